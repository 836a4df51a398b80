"""`make run`: start the four services in the seed's order, each after the one before is healthy.

Logs go to `.run/<service>.log`. Ctrl-C stops all four; a service that dies is reported
with the end of its log, and the others are stopped. The API keys come from
`API_KEYS`/`SERVICE_KEY` in the environment or `.env`, else from `.run/keys.env`, made
on the first run (mode 0600, outside git); all four get them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared import keygen

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".run"
KEYS_FILE = RUN_DIR / "keys.env"
DOTENV = ROOT / ".env"
SERVICES = [
    ("market-data-gateway", 8001),
    ("regime-detection", 8002),
    ("risk-management", 8003),
    ("execution", 8004),
]
START_TIMEOUT = 60.0

SAMPLE = """\
  curl -s -X POST http://localhost:8004/api/v1/trade \\
    -H 'X-API-Key: {key}' -H 'Content-Type: application/json' \\
    -d '{{"symbol": "BTC-USD", "side": "buy", "amount": 1000}}'"""


def stack_keys() -> dict[str, str]:
    """The keys: the environment's, else `.env`'s, else the keys file (made if missing)."""
    environ = dict(os.environ)
    if not keygen.given(environ) and DOTENV.exists():
        dotenv = keygen.read(DOTENV)
        environ.update({k: v for k, v in dotenv.items() if k in ("API_KEYS", "SERVICE_KEY")})
    return keygen.ensure(KEYS_FILE, environ)


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start(folder: str, port: int, keys: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (RUN_DIR / f"{folder}.log").open("wb")
    cmd = [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--no-access-log"]
    env = {**os.environ, "API_KEYS": keys["API_KEYS"], "SERVICE_KEY": keys["SERVICE_KEY"]}
    return subprocess.Popen(cmd, cwd=ROOT / folder, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(folder: str, port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{folder} exited with code {proc.returncode}")
        if healthy(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{folder} was not healthy within {START_TIMEOUT:.0f}s")


def stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in reversed(list(procs.values())):
        if proc.poll() is None:
            proc.terminate()
    for folder, proc in procs.items():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            print(f"{folder} did not stop in 10s; killing it")
            proc.kill()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    RUN_DIR.mkdir(exist_ok=True)
    taken = [port for _, port in SERVICES if port_taken(port)]
    if taken:
        print(f"ports already in use: {taken}; is the stack already running?", file=sys.stderr)
        return 1
    keys = stack_keys()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    # Explicit handlers: a shell that starts us in the background ignores SIGINT.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        for folder, port in SERVICES:
            print(f"starting {folder} on :{port} ...", flush=True)
            procs[folder] = start(folder, port, keys)
            try:
                wait_healthy(folder, port, procs[folder])
            except RuntimeError as exc:
                print(f"\n{exc}; last log lines:\n{tail(RUN_DIR / f'{folder}.log')}")
                return 1
        print("\ntradestack is up:")
        for folder, port in SERVICES:
            print(f"  {folder:<20} http://localhost:{port}   docs: http://localhost:{port}/docs")
        sample = SAMPLE.format(key=keys.get("ADMIN_KEY", "$ADMIN_KEY"))
        print(
            f"\nlogs: {RUN_DIR}/<service>.log\nkeys: {KEYS_FILE} (grep ADMIN_KEY {KEYS_FILE})"
            f"\n\ntry a trade (with the admin key):\n{sample}\n\nCtrl-C stops all four."
        )
        while True:
            for folder, proc in procs.items():
                if proc.poll() is not None:
                    print(f"\n{folder} died (exit code {proc.returncode}); last log lines:")
                    print(tail(RUN_DIR / f"{folder}.log"))
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    finally:
        stop_all(procs)
        print("all services stopped.")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
