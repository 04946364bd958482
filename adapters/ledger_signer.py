"""Ed25519 for the ledger's checkpoints: new sealed keys, signing, and verifying a note."""

from __future__ import annotations

import base64
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from adapters.key_vault import KeyVault
from domain.checkpoint import NoteKey
from domain.ledger_keys import LedgerKey


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def note_key(key: LedgerKey) -> NoteKey:
    return NoteKey(key.name, base64.b64decode(key.public_key))


def _label(key: NoteKey) -> str:
    return f"ledger:{key.name}+{key.key_id.hex()}"


def generate_ledger_key(vault: KeyVault, name: str, at: datetime) -> LedgerKey:
    """A fresh Ed25519 key named `name` (the checkpoints' origin), its private half sealed."""
    private = Ed25519PrivateKey.generate()
    public = NoteKey(name, private.public_key().public_bytes_raw())
    return LedgerKey(
        name=name,
        key_id=public.key_id.hex(),
        public_key=base64.b64encode(public.public_key).decode(),
        sealed_private_key=vault.seal_bytes(_label(public), private.private_bytes_raw()),
        generated_at=at,
    )


class CheckpointSigner:
    """Signs note texts with one opened ledger key."""

    def __init__(self, vault: KeyVault, key: LedgerKey) -> None:
        self.key = note_key(key)
        raw = vault.open_bytes(_label(self.key), key.sealed_private_key)
        self._private = Ed25519PrivateKey.from_private_bytes(raw)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)
