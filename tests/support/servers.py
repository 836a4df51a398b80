"""Real servers for tests: an ASGI app in a background uvicorn thread, or a uvicorn process.

Nothing here sleeps for time to pass: start-up is awaited by polling with a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], bool], *, timeout: float = 15.0, interval: float = 0.02, what: str = ""
) -> None:
    """Poll `predicate` every `interval` seconds until it is true or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)  # the poll interval of a deadline-bounded wait
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")


def answers(url: str) -> bool:
    """Whether `url` answers at all (any status)."""
    try:
        httpx.get(url, timeout=0.5)
    except httpx.HTTPError:
        return False
    return True


class ThreadServer:
    """An ASGI app served by uvicorn on 127.0.0.1 from a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started, what=f"server on {self.url}")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[ThreadServer]:
    """Serve `app` for the duration of the block."""
    server = ThreadServer(app, port).start()
    try:
        yield server
    finally:
        server.stop()


class ServiceProcess:
    """`uvicorn main:app` run from a service folder as a real process, as in the dev loop."""

    def __init__(
        self,
        folder: str,
        port: int,
        env: Mapping[str, str],
        log_path: Path,
        app: str = "main:app",
        options: Sequence[str] = ("--no-access-log",),
    ) -> None:
        self.folder = folder
        self.port = port
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.app = app
        self.options = list(options)
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait_path: str = "/health", timeout: float = 30.0) -> ServiceProcess:
        log = self.log_path.open("ab")
        cmd = [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), *self.options]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO / self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(
            lambda: self._exited() or answers(self.url + wait_path),
            timeout=timeout,
            what=f"{self.folder} on {self.url}",
        )
        if self._exited():
            raise RuntimeError(f"{self.folder} exited; log:\n{self.log_path.read_text()[-3000:]}")
        return self

    def _exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
