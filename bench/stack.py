"""Starting and stopping the processes under test: uvicorn with uvloop and httptools.

Every server is its own process on a free 127.0.0.1 port, started in order, each one
waited for (its health path answering 200) with a deadline, and stopped in reverse with
SIGTERM (SIGINT under a profiler), then SIGKILL if it does not leave in time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
UVICORN_FLAGS = ("--loop", "uvloop", "--http", "httptools", "--no-access-log")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_ok(url: str) -> bool:
    """Whether `url` answers 200."""
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Server:
    """One uvicorn process: `target` is `module:app`, or a factory with `factory=True`."""

    name: str
    target: str
    log_dir: Path
    cwd: Path = REPO
    env: Mapping[str, str] = field(default_factory=dict)
    factory: bool = False
    health_path: str = "/health"
    # Put before `-m uvicorn`, e.g. a profiler: ("-m", "pyinstrument", ...).
    wrap: Sequence[str] = ()
    # Put before the interpreter itself, e.g. valgrind (see `bench.instructions`).
    launcher: Sequence[str] = ()
    # Whose code runs: this checkout with this interpreter, or another checkout with its
    # own venv's (`python -m bench --against`).
    python: str = sys.executable
    pythonpath: Path = REPO
    # uvicorn re-raises the signal after its graceful exit: SIGTERM then kills the process
    # outright, SIGINT becomes a KeyboardInterrupt a wrapper (pyinstrument) can catch.
    stop_signal: int = signal.SIGTERM
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        cmd = [*self.launcher, self.python, *self.wrap, "-m", "uvicorn", self.target]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), *UVICORN_FLAGS]
        cmd += ["--log-level", "warning"]
        return [*cmd, "--factory"] if self.factory else cmd

    def start(self) -> Server:
        env = {**os.environ, "PYTHONPATH": str(self.pythonpath), **self.env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}")
            if answers_ok(self.url + self.health_path):
                return self
            time.sleep(0.05)  # the poll interval of a deadline-bounded wait
        self.stop()
        raise TimeoutError(f"{self.name} did not answer {self.health_path} in {START_TIMEOUT}s")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far (Linux /proc)."""
        if self.proc is None:
            return 0.0
        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` from /proc/<pid>/stat; 0 where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running(servers: Sequence[Server]) -> Iterator[Sequence[Server]]:
    """Start `servers` in order (each waited for) and stop them all in reverse."""
    started: list[Server] = []
    try:
        for server in servers:
            started.append(server.start())
        yield servers
    finally:
        for server in reversed(started):
            server.stop()


def bare_chain(log_dir: Path) -> list[Server]:
    """The reference chain, gateway first so each app's downstream is up before it."""
    gateway = Server("bare-gateway", "bench.bare_chain:create_gateway", log_dir, factory=True)
    regime = Server("bare-regime", "bench.bare_chain:create_regime", log_dir, factory=True)
    risk = Server("bare-risk", "bench.bare_chain:create_risk", log_dir, factory=True)
    execution = Server("bare-execution", "bench.bare_chain:create_execution", log_dir, factory=True)
    urls = {
        "BARE_MARKET_DATA_URL": gateway.url,
        "BARE_REGIME_URL": regime.url,
        "BARE_RISK_URL": risk.url,
    }
    chain = [gateway, regime, risk, execution]
    for server in chain:
        server.env = urls
        server.health_path = "/docs"
    return chain


def hello_world(log_dir: Path) -> Server:
    """The bare FastAPI hello-world."""
    return Server("hello", "bench.bare_chain:create_hello", log_dir, factory=True, health_path="/")


# The real services: (name, folder), in the order each waits for the one before.
SERVICES = (
    ("gateway", "market-data-gateway"),
    ("regime", "regime-detection"),
    ("risk", "risk-management"),
    ("execution", "execution"),
)


def checkout_python(repo: Path) -> str:
    """The interpreter that runs `repo`'s services: this one for this checkout, else the
    other checkout's own venv (its locked dependencies, which may differ from ours)."""
    if repo.resolve() == REPO:
        return sys.executable
    python = repo / ".venv" / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"{repo} has no .venv: run `make install` in it first")
    return str(python)


def real_stack(
    log_dir: Path,
    env: Mapping[str, str],
    wrap: Mapping[str, Sequence[str]] | None = None,
    repo: Path = REPO,
) -> list[Server]:
    """The four services as `uvicorn main:app` from `repo`'s folders, wired to each other."""
    wrap = wrap or {}
    python = checkout_python(repo)
    servers = [
        Server(
            name,
            "main:app",
            log_dir,
            cwd=repo / folder,
            wrap=wrap.get(name, ()),
            python=python,
            pythonpath=repo,
        )
        for name, folder in SERVICES
    ]
    for server in servers:
        if server.wrap:
            server.stop_signal = signal.SIGINT
    by_name = {s.name: s for s in servers}
    urls = {
        "MARKET_DATA_URL": by_name["gateway"].url,
        "REGIME_URL": by_name["regime"].url,
        "RISK_URL": by_name["risk"].url,
        "EXECUTION_URL": by_name["execution"].url,
    }
    for server in servers:
        server.env = {**env, **urls}
    return servers


def flush_redis(url: str) -> None:
    """Empty the benchmark's Redis database."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2.0)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def postgres_database(admin_url: str, name: str) -> Iterator[str]:
    """A fresh PostgreSQL database for the run, dropped afterwards; yields its URL."""
    import asyncpg  # type: ignore[import-untyped]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url, timeout=5.0)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
