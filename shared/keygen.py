"""The keys file: generated once per install, read by `make run`, compose and the dev loop.

`python -m shared.keygen PATH` makes sure PATH holds the stack's keys, as `NAME=value`
lines a shell can source and `KEYS_FILE` can name:

    API_KEYS=admin:...,trader:...,viewer:...,service:...
    SERVICE_KEY=...        the key the services send each other
    ADMIN_KEY=...  TRADER_KEY=...  VIEWER_KEY=...   one per role, for people

When `API_KEYS` and `SERVICE_KEY` are both in the environment they are used (and
written, so the file always says what the services use); otherwise an existing file is
kept; otherwise fresh random keys are made. The file is created with mode 0600 and no
key is ever printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

from shared.auth import Role

ROLES = tuple(role.value for role in Role)


def generate() -> dict[str, str]:
    """Fresh keys: one per role (256 bits each) and the `API_KEYS` that lists them."""
    keys = {f"{role.upper()}_KEY": secrets.token_urlsafe(32) for role in ROLES}
    keys["API_KEYS"] = ",".join(f"{role}:{keys[f'{role.upper()}_KEY']}" for role in ROLES)
    return keys


def read(path: Path) -> dict[str, str]:
    """The `NAME=value` lines of a keys (or `.env`) file; comments and blanks skipped."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip().strip("'\"")
    return values


def write(path: Path, keys: Mapping[str, str], *, owner: int | None = None) -> None:
    """Write `keys` to `path`, readable by its owner only (mode 0600 from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# tradestack API keys: secret; generated once, kept outside git.\n")
        out.writelines(f"{name}={value}\n" for name, value in keys.items())
    if owner is not None:
        os.chown(tmp, owner, owner)
    tmp.replace(path)


def given(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The keys set in `environ`, if both `API_KEYS` and `SERVICE_KEY` are."""
    if environ.get("API_KEYS") and environ.get("SERVICE_KEY"):
        keys = {"API_KEYS": environ["API_KEYS"], "SERVICE_KEY": environ["SERVICE_KEY"]}
        # A plain key of each role, for the sample curl and for people.
        for entry in reversed(environ["API_KEYS"].split(",")):
            role, _, key = entry.strip().partition(":")
            if role in ROLES and key and not key.startswith("sha256:"):
                keys[f"{role.upper()}_KEY"] = key
        return keys
    if environ.get("API_KEYS") or environ.get("SERVICE_KEY"):
        raise SystemExit("set both API_KEYS and SERVICE_KEY, or neither (to generate them)")
    return None


def ensure(path: Path, environ: Mapping[str, str], *, owner: int | None = None) -> dict[str, str]:
    """The keys to use: from `environ`, else from `path`, else new ones written there."""
    keys = given(environ)
    if keys is not None:
        if not path.exists() or read(path) != keys:
            write(path, keys, owner=owner)
        return keys
    if path.exists():
        return read(path)
    keys = generate()
    write(path, keys, owner=owner)
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="the keys file to create or keep")
    parser.add_argument("--owner", type=int, help="uid (and gid) to own the file")
    args = parser.parse_args(argv)
    existed = args.path.exists()
    ensure(args.path, os.environ, owner=args.owner)
    print(f"keys in {args.path} ({'kept' if existed else 'written'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
