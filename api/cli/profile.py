"""The admin's own files: profiles written by `keyledger login`, and cached access tokens.

They live in `$XDG_CONFIG_HOME/keyledger` (default `~/.config/keyledger`), a directory of
mode 0700 holding files of mode 0600. Like ssh with a private key, the CLI refuses a profile
that others may read: it holds an admin secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from api.cli.output import CliError

PROFILE_FILE = "profile.json"
EARLY = 30.0  # seconds before expiry a cached token is no longer used


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "keyledger"


def profile_path() -> Path:
    return config_dir() / PROFILE_FILE


@dataclass(frozen=True)
class Profile:
    """Where the server is and who the admin is: a secret, or a private key's file."""

    server: str
    client_id: str
    client_secret: str | None = None
    key_file: str | None = None

    def __repr__(self) -> str:
        return f"Profile(server={self.server!r}, client_id={self.client_id!r})"


def _private_text(path: Path) -> str:
    """The file's text, refused when group or others may read or write it (as ssh does)."""
    mode = path.stat().st_mode
    if mode & 0o077:
        raise CliError(
            f"{path} is mode {stat.S_IMODE(mode):04o}, open to others: it holds an admin "
            f"credential; run `chmod 600 {path}` (or `keyledger login` again)"
        )
    return path.read_text(encoding="utf-8")


def _write_private(path: Path, content: str) -> None:
    """Write a file of mode 0600 in a directory of mode 0700, atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.parent.stat().st_mode) & 0o077:
        path.parent.chmod(0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(content)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _profiles() -> dict[str, Any]:
    path = profile_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(_private_text(path))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CliError(f"{path} is not a keyledger profile file: remove it and log in") from None
    profiles = data.get("profiles") if isinstance(data, dict) else None
    return profiles if isinstance(profiles, dict) else {}


def load_profile(name: str) -> Profile | None:
    entry = _profiles().get(name)
    if not isinstance(entry, dict):
        return None
    try:
        return Profile(**entry)
    except TypeError:
        raise CliError(f"profile {name} in {profile_path()} is damaged: log in again") from None


def save_profile(name: str, profile: Profile) -> Path:
    profiles = _profiles()
    profiles[name] = {k: v for k, v in asdict(profile).items() if v is not None}
    _write_private(profile_path(), json.dumps({"profiles": profiles}, indent=2) + "\n")
    return profile_path()


def remove_profile(name: str) -> bool:
    profiles = _profiles()
    if profiles.pop(name, None) is None:
        return False
    _write_private(profile_path(), json.dumps({"profiles": profiles}, indent=2) + "\n")
    return True


def _token_path(key: str) -> Path:
    return config_dir() / "tokens" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def cached_token(key: str) -> str | None:
    """A cached access token still good for more than `EARLY` seconds; else None."""
    path = _token_path(key)
    try:
        data = json.loads(_private_text(path))
    except (OSError, ValueError, CliError):
        return None
    token, expires_at = data.get("access_token"), data.get("expires_at")
    if not isinstance(token, str) or not isinstance(expires_at, int | float):
        return None
    return token if expires_at - EARLY > time.time() else None


def cache_token(key: str, token: str, expires_in: int) -> None:
    """Keep the token (mode 0600); a cache that cannot be written is only a missed saving."""
    content = json.dumps({"access_token": token, "expires_at": time.time() + expires_in})
    with contextlib.suppress(OSError):
        _write_private(_token_path(key), content)


def forget_token(key: str) -> None:
    with contextlib.suppress(OSError):
        _token_path(key).unlink()
