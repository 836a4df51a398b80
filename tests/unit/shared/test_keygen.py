"""The keys file: made once (mode 0600), kept, overridden by the environment, read by KEYS_FILE."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared import keygen
from shared.auth import KeyRing, Role
from shared.settings import CommonSettings


def test_fresh_keys_are_random_and_accepted_by_the_services(tmp_path: Path) -> None:
    """Two installs get different keys; each role's key is in API_KEYS with that role."""
    first, second = keygen.generate(), keygen.generate()
    assert first["ADMIN_KEY"] != second["ADMIN_KEY"]
    ring = KeyRing.parse(first["API_KEYS"])
    for role in Role:
        caller = ring.identify(first[f"{role.upper()}_KEY"])
        assert caller is not None
        assert caller.role is role


def test_the_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    """The first call writes the file owner-only; the next keeps it as it is."""
    path = tmp_path / ".run" / "keys.env"
    made = keygen.ensure(path, {})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keygen.ensure(path, {}) == made
    assert keygen.read(path) == made


def test_the_environment_wins_and_is_written(tmp_path: Path) -> None:
    """API_KEYS and SERVICE_KEY from the environment are used and the file says so."""
    path = tmp_path / "keys.env"
    keygen.ensure(path, {})
    given = {"API_KEYS": f"admin:{'a' * 20},service:{'s' * 20}", "SERVICE_KEY": "s" * 20}
    keys = keygen.ensure(path, given)
    assert keys["ADMIN_KEY"] == "a" * 20
    assert keygen.read(path)["API_KEYS"] == given["API_KEYS"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_only_one_of_the_two_is_an_error(tmp_path: Path) -> None:
    """API_KEYS without SERVICE_KEY (or the reverse) is refused, not half generated."""
    with pytest.raises(SystemExit, match="both API_KEYS and SERVICE_KEY"):
        keygen.ensure(tmp_path / "keys.env", {"API_KEYS": "admin:" + "a" * 20})


def test_keygen_prints_no_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m shared.keygen` says where the keys are, never what they are."""
    path = tmp_path / "keys.env"
    assert keygen.main([str(path)]) == 0
    out = capsys.readouterr()
    for value in keygen.read(path).values():
        assert value not in out.out + out.err


def test_keys_file_fills_what_the_environment_leaves_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KEYS_FILE gives API_KEYS and SERVICE_KEY unless the environment sets them."""
    path = tmp_path / "keys.env"
    keys = keygen.ensure(path, {})
    monkeypatch.delenv("API_KEYS")
    monkeypatch.delenv("SERVICE_KEY")
    settings = CommonSettings(keys_file=path)
    assert settings.api_keys.get_secret_value() == keys["API_KEYS"]
    assert settings.service_key is not None
    assert settings.service_key.get_secret_value() == keys["SERVICE_KEY"]
    monkeypatch.setenv("API_KEYS", "viewer:" + "v" * 20)
    assert CommonSettings(keys_file=path).api_keys.get_secret_value() == "viewer:" + "v" * 20


def test_a_missing_keys_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KEYS_FILE naming no file fails at start-up, saying which file."""
    monkeypatch.delenv("API_KEYS")
    with pytest.raises(ValidationError, match=r"KEYS_FILE .*nope\.env cannot be read"):
        CommonSettings(keys_file=tmp_path / "nope.env")


def test_settings_never_show_the_keys() -> None:
    """The settings' repr (what a log of them would print) hides both keys."""
    settings = CommonSettings(api_keys="admin:" + "a" * 20, service_key="s" * 20)
    assert "a" * 20 not in repr(settings)
    assert "s" * 20 not in repr(settings)
