"""Driving load: wrk when it is there (installed from Debian if we may), else a Python generator.

Either way the load runs in a separate process, bounded in time (`duration`) and, for
the Python generator, in count too, and reports one `BENCH_RESULT {json}` line that
`parse_result` reads. wrk counts responses with status >= 400 as errors, plus socket
errors (connect, read, write, timeout); the Python generator counts every non-2xx.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RESULT_MARK = "BENCH_RESULT "
# Headroom past the run's own duration before a load process is killed.
GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class LoadSpec:
    """One load run: where, how, how many at once, for how long."""

    url: str
    method: str = "GET"
    bodies: Sequence[dict[str, Any]] = ()
    headers: dict[str, str] = field(default_factory=dict)
    concurrency: int = 1
    duration: float = 5.0
    timeout: float = 5.0
    # Only the Python generator needs it: a second bound beside the duration.
    max_requests: int = 1_000_000


@dataclass(frozen=True)
class LoadResult:
    """What one run measured; latencies in milliseconds."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    status_errors: int
    socket_errors: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1), "errors": self.errors}


def parse_result(stdout: str) -> LoadResult:
    """Read the `BENCH_RESULT` line a load process printed (wrk's or ours)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            raw = json.loads(line[len(RESULT_MARK) :])
            sockets = sum(int(raw.get(k, 0)) for k in ("connect", "read", "write", "timeout"))
            return LoadResult(
                requests=int(raw["requests"]),
                duration_s=raw["duration_us"] / 1e6,
                p50_ms=raw["p50_us"] / 1000.0,
                p99_ms=raw["p99_us"] / 1000.0,
                status_errors=int(raw["status_errors"]),
                socket_errors=sockets,
            )
    raise ValueError(f"no {RESULT_MARK.strip()} line in load output:\n{stdout[-2000:]}")


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def wrk_script(spec: LoadSpec) -> str:
    """A wrk Lua script: cycle through the bodies (if any), print the result as JSON."""
    lines = [f"wrk.method = {_lua_string(spec.method)}"]
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in spec.headers.items()]
    if spec.bodies:
        path = urlsplit(spec.url).path or "/"
        bodies = ", ".join(_lua_string(json.dumps(b, separators=(",", ":"))) for b in spec.bodies)
        lines += [
            'wrk.headers["Content-Type"] = "application/json"',
            f"local bodies = {{{bodies}}}",
            "local i = 0",
            "request = function()",
            "  i = i % #bodies + 1",
            f"  return wrk.format(nil, {_lua_string(path)}, nil, bodies[i])",
            "end",
        ]
    fields = (
        '{"requests":%d,"duration_us":%d,"status_errors":%d,"connect":%d,'
        '"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}'
    )
    lines += [
        "done = function(summary, latency, requests)",
        "  local e = summary.errors",
        f"  io.write(string.format('{RESULT_MARK}{fields}\\n', summary.requests,",
        "    summary.duration, e.status, e.connect, e.read, e.write, e.timeout,",
        "    latency:percentile(50), latency:percentile(99)))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def ensure_wrk(say: Callable[[str], None]) -> str | None:
    """The path of wrk, installing Debian's package first when it is missing and we are root."""
    found = shutil.which("wrk")
    if found or os.environ.get("BENCH_NO_INSTALL"):
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        say("wrk is missing and cannot be installed here (not root or no apt-get)")
        return None
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        say(f"wrk is missing: running `{' '.join(cmd)}`")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
        if done.returncode != 0:
            say(f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()[-500:]}")
            return None
    return shutil.which("wrk")


@dataclass(frozen=True)
class Driver:
    """Runs a `LoadSpec` in a separate process: wrk at `wrk`, or the Python generator."""

    wrk: str | None
    threads: int = 1

    @property
    def name(self) -> str:
        return "wrk" if self.wrk else "python (bench.pyload)"

    def run(self, spec: LoadSpec) -> LoadResult:
        if self.wrk:
            return self._run_wrk(self.wrk, spec)
        return self._run_python(spec)

    def _run_wrk(self, wrk: str, spec: LoadSpec) -> LoadResult:
        with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
            script = Path(tmp) / "run.lua"
            script.write_text(wrk_script(spec))
            threads = max(1, min(self.threads, spec.concurrency))
            cmd = [wrk, f"-t{threads}", f"-c{spec.concurrency}", f"-d{spec.duration:g}s"]
            cmd += [f"--timeout={spec.timeout:g}s", "-s", str(script), spec.url]
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=spec.duration + GRACE_SECONDS
            )
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
        return parse_result(done.stdout)

    def _run_python(self, spec: LoadSpec) -> LoadResult:
        payload = json.dumps({**asdict(spec), "bodies": list(spec.bodies)})
        done = subprocess.run(
            [sys.executable, "-m", "bench.pyload"],
            input=payload,
            capture_output=True,
            text=True,
            timeout=spec.duration + GRACE_SECONDS,
            cwd=Path(__file__).resolve().parents[1],
        )
        if done.returncode != 0:
            raise RuntimeError(f"bench.pyload failed ({done.returncode}): {done.stderr[-2000:]}")
        return parse_result(done.stdout)
