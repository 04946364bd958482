"""Processes refuse the wrong secrets; commands never fork the installation (issue 15, inv. 9).

The incidents: `keyledger keys rotate` run from another directory generated a fresh
key-encryption key there, sealed a signing key nobody could open and left the server unable
to start; `keyledger clients register` from another directory created a second database and
printed credentials that never worked. Each is replayed here against a real installation.
"""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.event_store import Ledger
from api.bootstrap import build, prepare
from api.cli.main import main
from api.settings import Settings
from domain.installation import Installation, WrongInstallationSecret

OTHER_KEK = base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def installed(database_url: str, tmp_path: Path) -> Settings:
    """An installation as `keyledger serve` leaves it: keys, a first signing key, fingerprints."""
    settings = Settings(
        database_url=database_url, keys_dir=tmp_path / "keys", kafka_bootstrap="off"
    )
    prepare(settings, create=True)
    return settings


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Another working directory, and an environment with no keyledger settings in it."""
    for name in list(os.environ):
        if name.startswith("KEYLEDGER_"):
            monkeypatch.delenv(name)
    other = tmp_path / "somewhere-else"
    other.mkdir()
    monkeypatch.chdir(other)
    return other


def events(settings: Settings) -> int:
    ledger = Ledger(settings.database_url, create=False)
    try:
        return ledger.head()
    finally:
        ledger.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().err


def test_the_first_start_records_the_installations_fingerprints_once(installed: Settings) -> None:
    prepare(installed, create=True)  # a second start, or a second replica
    ledger = Ledger(installed.database_url, create=False)
    try:
        installation = ledger.get_installation()
        recorded = [n for n in ledger.read(0, 100) if "Installation" in n.topic]
    finally:
        ledger.close()
    assert isinstance(installation, Installation)
    assert len(recorded) == 1
    kek = (installed.keys_dir / "key-encryption-key").read_bytes()
    assert kek not in recorded[0].state  # a fingerprint, never the value


NO_SERVER = "no keyledger server configured"


def test_a_stray_key_rotation_from_another_directory_touches_no_database(
    installed: Settings,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The incident: `keys rotate` with the live database's URL. Rotation is an admin API
    call now: the command never opens a database or reads a key-encryption key."""
    monkeypatch.setenv("KEYLEDGER_DATABASE_URL", installed.database_url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(elsewhere / ".config"))
    head = events(installed)
    status, error = run(capsys, "keys", "rotate", "--delay", "0s")
    assert status == 1
    assert NO_SERVER in error
    assert list(elsewhere.iterdir()) == []  # no key-encryption key, no database, no profile
    assert events(installed) == head
    build(installed).ledger.close()  # the server still starts


def test_a_stray_registration_from_another_directory_creates_no_second_database(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(elsewhere / ".config"))
    status, error = run(capsys, "clients", "register", "--name", "job", "--scope", "a")
    assert status == 1
    assert NO_SERVER in error
    assert "kl_secret_" not in capsys.readouterr().out
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [("clients", "list"), ("keys", "list"), ("tokens", "show", "x"), ("alerts", "list")],
)
def test_admin_commands_without_a_server_say_so_and_create_nothing(
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(elsewhere / ".config"))
    status, error = run(capsys, *command)
    assert (status, NO_SERVER in error) == (1, True)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "command", [("projections", "status"), ("relay", "status"), ("analytics", "keep")]
)
def test_no_local_command_but_serve_and_bootstrap_creates_a_database(
    elsewhere: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    status, error = run(capsys, *command)
    assert status != 0
    assert "no keyledger installation" in error
    assert list(elsewhere.iterdir()) == []


def test_a_local_command_with_another_key_encryption_key_is_refused(
    installed: Settings,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KEYLEDGER_DATABASE_URL", installed.database_url)
    monkeypatch.setenv("KEYLEDGER_KEYS_DIR", str(installed.keys_dir))
    monkeypatch.setenv("KEYLEDGER_KEY_ENCRYPTION_KEY", OTHER_KEK)
    head = events(installed)
    status, error = run(capsys, "admin", "bootstrap", "--force")
    assert (status != 0, "KEYLEDGER_KEY_ENCRYPTION_KEY" in error) == (True, True)
    assert "not this installation's" in error
    assert events(installed) == head


def test_a_local_command_with_another_pepper_is_refused(
    installed: Settings,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KEYLEDGER_DATABASE_URL", installed.database_url)
    monkeypatch.setenv("KEYLEDGER_KEYS_DIR", str(installed.keys_dir))
    monkeypatch.setenv("KEYLEDGER_SECRET_PEPPER", "p" * 40)
    head = events(installed)
    status, error = run(capsys, "admin", "bootstrap", "--force")
    assert (status != 0, "KEYLEDGER_SECRET_PEPPER" in error) == (True, True)
    assert "kl_secret_" not in capsys.readouterr().out
    assert events(installed) == head


def test_a_server_with_another_pepper_refuses_to_start(installed: Settings) -> None:
    with pytest.raises(WrongInstallationSecret, match="KEYLEDGER_SECRET_PEPPER"):
        build(replace(installed, secret_pepper="q" * 40))


def test_admin_bootstrap_sets_up_a_new_installation(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["admin", "bootstrap", "--json"])
    assert status == 0
    assert (elsewhere / "var" / "keyledger.db").is_file()
    assert (elsewhere / "var" / "keys" / "key-encryption-key").is_file()
    status, _ = run(capsys, "projections", "status")
    assert status == 0
