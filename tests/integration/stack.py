"""The composed stack as real processes: uvicorn per service, env from docker-compose.yml.

Compose host names are mapped to 127.0.0.1 and each service gets a free port, so the
tests never collide with a stack started by `make run`. Redis is a `redis-server` the
tests start (so they can stop it), Coinbase is the fake Coinbase server.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.servers import REPO, ServiceProcess, free_port, wait_until

# compose service name -> (folder, container port)
SERVICES: dict[str, tuple[str, int]] = {
    "market-data": ("market-data-gateway", 8001),
    "regime-detection": ("regime-detection", 8002),
    "risk-management": ("risk-management", 8003),
    "execution": ("execution", 8004),
}
START_ORDER = ["market-data", "regime-detection", "risk-management", "execution"]


_UNSET = re.compile(r"\$\{(\w+):-([^}]*)\}")


def compose_environment(path: Path = REPO / "docker-compose.yml") -> dict[str, dict[str, str]]:
    """Each compose service's `environment`, as a dict."""
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    envs: dict[str, dict[str, str]] = {}
    for name, service in spec["services"].items():
        raw = service.get("environment") or {}
        items = raw.items() if isinstance(raw, dict) else (_entry(e) for e in raw)
        # `- NAME` alone passes the host's value through, as compose does (unset: left out);
        # `${NAME:-default}` as compose reads it with NAME unset: the default.
        envs[name] = {k: _UNSET.sub(r"\2", str(v)) for k, v in items if v is not None}
    return envs


def _entry(text: str) -> tuple[str, str | None]:
    name, sep, value = text.partition("=")
    return (name, value) if sep else (name, os.environ.get(name))


class RedisServer:
    """A throw-away `redis-server` on a spare port, stoppable and restartable."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._ping, what=f"redis on {self.port}")

    def _ping(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
        )
        return result.stdout.strip() == b"PONG"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def start_again(self) -> None:
        """Start on the same port, as a restarted Redis would come back."""
        self.start()


@dataclass
class Stack:
    """Four service processes wired together as docker-compose wires them."""

    workdir: Path
    coinbase_url: str
    redis: RedisServer
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, ServiceProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ports = {name: free_port() for name in SERVICES}
        compose = compose_environment()
        for name in START_ORDER:
            folder, _ = SERVICES[name]
            env = {k: self._localise(v) for k, v in compose[name].items()}
            # The keys come from the tests' environment (tests/support/keys.py), not the
            # compose keys volume.
            env.pop("KEYS_FILE", None)
            env.update(self.extra_env)
            self.procs[name] = ServiceProcess(folder, self.ports[name], env, self.log_path(name))

    def _localise(self, value: str) -> str:
        for name, (_, port) in SERVICES.items():
            value = value.replace(f"http://{name}:{port}", f"http://127.0.0.1:{self.ports[name]}")
        value = value.replace("redis://redis:6379/0", self.redis.url)
        value = value.replace("https://api.exchange.coinbase.com", self.coinbase_url)
        return value.replace("sqlite:////data/", f"sqlite:///{self.workdir}/")

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> None:
        self.procs[name].start()

    def stop(self, name: str) -> None:
        self.procs[name].stop()

    def start_all(self) -> None:
        for name in START_ORDER:
            self.start(name)

    def stop_all(self) -> None:
        for name in reversed(START_ORDER):
            self.stop(name)

    def health(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.url(name) + "/health", timeout=5).json()
        return body
