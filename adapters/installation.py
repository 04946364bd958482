"""This process's installation secrets, and the check that they are the installation's.

The key-encryption key seals the signing keys; the pepper keys every stored secret hash. Both
come from settings or from files in `KEYLEDGER_KEYS_DIR`. Only a process that sets up an
installation (`serve`, `admin bootstrap`) may generate the files; every other process reads
them, and every process compares their fingerprints with the ones the installation recorded
before it seals a key or hashes a secret (DESIGN.md invariant 9).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from adapters.client_secrets import PEPPER_FILE
from adapters.files import create_once
from adapters.key_vault import KEK_FILE
from domain.installation import KEK_VARIABLE, PEPPER_VARIABLE

_FINGERPRINT_LABEL = b"keyledger installation fingerprint v1\x00"


class InstallationSecretError(ValueError):
    """A key-encryption key or pepper that is missing or unusable; names its variable."""


def fingerprint(secret: bytes) -> str:
    """A one-way, labelled digest: tells two secrets apart, reveals neither."""
    return hashlib.sha256(_FINGERPRINT_LABEL + secret).hexdigest()[:32]


def decode_kek(text: str) -> bytes:
    value = text.strip()
    try:
        raw = base64.urlsafe_b64decode(
            value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4)
        )
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise InstallationSecretError(f"{KEK_VARIABLE} must be 32 bytes, base64-encoded")
    return raw


@dataclass(frozen=True, repr=False)
class InstallationSecrets:
    """The key-encryption key and the pepper this process holds (never printed)."""

    kek: bytes
    pepper: bytes

    @property
    def kek_fingerprint(self) -> str:
        return fingerprint(self.kek)

    @property
    def pepper_fingerprint(self) -> str:
        return fingerprint(self.pepper)

    def __repr__(self) -> str:
        return f"InstallationSecrets(kek={self.kek_fingerprint}, pepper={self.pepper_fingerprint})"


def _from_file(path: Path, variable: str, create: bool, generate: bytes) -> bytes:
    if create:
        return create_once(path, generate)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InstallationSecretError(
            f"{variable} is not set and {path} does not exist: this process is not pointed at "
            "the installation's keys (set the variable, or KEYLEDGER_KEYS_DIR)"
        ) from None


def read_secrets(
    keys_dir: Path, kek: str | None, pepper: str | None, *, create: bool
) -> InstallationSecrets:
    """The configured secrets, else the files in `keys_dir` (generated only when `create`)."""
    kek_text = kek or _from_file(
        keys_dir / KEK_FILE,
        KEK_VARIABLE,
        create,
        base64.urlsafe_b64encode(secrets.token_bytes(32)),
    ).decode("ascii", "replace")
    pepper_bytes = (
        pepper.encode()
        if pepper
        else _from_file(
            keys_dir / PEPPER_FILE, PEPPER_VARIABLE, create, secrets.token_urlsafe(48).encode()
        ).strip()
    )
    if len(pepper_bytes) < 32:
        raise InstallationSecretError(f"{PEPPER_VARIABLE} must be at least 32 bytes")
    return InstallationSecrets(decode_kek(kek_text), pepper_bytes)
