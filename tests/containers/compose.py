"""A compose project run for real by the Docker engine, from a fresh copy of the repository.

The copy holds the repository's tracked files as they are in the working tree (a fresh
clone of what is being tested, uncommitted edits included, nothing untracked: no venv,
no ledger). Each project has a unique name, so tests never meet a stack started by hand
or by another run on the same engine, and `down` removes its containers and volumes.
Ports are published on ephemeral host ports (`tests/containers/ports*.yml`) and looked up
with `docker compose port`, so they never clash with `make run` or another stack.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.support.servers import REPO

HERE = Path(__file__).resolve().parent


def engine_answers() -> bool:
    """Whether a Docker engine with compose v2 answers on this machine."""
    if shutil.which("docker") is None:
        return False
    probe = ["docker", "compose", "version"], ["docker", "info"]
    return all(
        subprocess.run(cmd, capture_output=True, check=False, timeout=30).returncode == 0
        for cmd in probe
    )


def fresh_copy(target: Path) -> Path:
    """The repository's tracked files, as they are now, copied into `target`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


class ComposeProject:
    """`docker compose -p <unique> -f ...` in a fresh copy of the repository."""

    def __init__(self, workdir: Path, files: list[str], *, label: str) -> None:
        self.dir = fresh_copy(workdir)
        self.name = f"tstest-{label}-{uuid.uuid4().hex[:8]}"
        # The test's port overrides live beside this module, outside the copied tree.
        self.files = [str(self.dir / f) if not f.startswith("/") else f for f in files]

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> str:
        """Run `docker compose <args>` for this project; its stdout."""
        cmd = ["docker", "compose", "-p", self.name]
        for f in self.files:
            cmd += ["-f", f]
        result = subprocess.run(
            [*cmd, *args], cwd=self.dir, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed:\n{result.stderr[-4000:]}")
        return result.stdout

    def up(self) -> None:
        """Build the images and start everything, waiting until every service is healthy."""
        self.compose("build", "--quiet")
        self.compose("up", "--detach", "--wait", "--wait-timeout", "300")

    def url(self, service: str, port: int, index: int = 1) -> str:
        """The host URL of `service`'s container `port` (ephemeral: asked each time)."""
        out = self.compose("port", "--index", str(index), service, str(port)).strip()
        host, _, published = out.rpartition(":")
        return f"http://{host or '127.0.0.1'}:{published}"

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", "--no-log-prefix", service)

    def down(self) -> None:
        """Remove the project's containers, networks and volumes (the images stay: the
        next project's build reuses their layers; `remove_images` drops them at the end)."""
        self.compose("down", "--volumes", "--remove-orphans", check=False)

    def remove_images(self) -> None:
        """Remove the images this project built (`<project>-<service>`)."""
        listed = subprocess.run(
            ["docker", "image", "ls", "-q", "--filter", f"reference={self.name}-*"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if listed:
            subprocess.run(["docker", "image", "rm", "-f", *set(listed)], capture_output=True)


# Makes a project from compose files (the conftest's `new_project` fixture).
NewProject = Callable[[list[str], str], "ComposeProject"]


def port_override(name: str) -> str:
    """Path of one of this folder's compose overrides (ephemeral host ports)."""
    return str(HERE / name)
