"""Sealing signing keys for the event store: AES-256-GCM under a key-encryption key.

The private key (PKCS#8 DER) is encrypted with a fresh 96-bit nonce and the key's `kid` as
associated data, so a sealed key cannot be passed off under another kid. The key-encryption
key comes from `KEYLEDGER_KEY_ENCRYPTION_KEY` (32 bytes, base64) or, when that is unset, from
`KEYS_DIR/key-encryption-key` (`adapters.installation` reads it, and checks it is the
installation's). Every replica needs the same.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.signing import PrivateKey, parse_private_key

KEK_FILE = "key-encryption-key"
_NONCE = 12


class KeyVaultError(ValueError):
    """A key-encryption key keyledger cannot use, or a sealed key it cannot open."""


class KeyVault:
    """Seals and opens private signing keys."""

    def __init__(self, kek: bytes) -> None:
        self._aead = AESGCM(kek)

    def seal(self, kid: str, key: PrivateKey) -> str:
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return self.seal_bytes(kid, der)

    def open(self, kid: str, sealed: str) -> PrivateKey:
        der = self.open_bytes(kid, sealed)
        return parse_private_key(serialization.load_der_private_key(der, password=None))

    def seal_bytes(self, label: str, secret: bytes) -> str:
        """Any key material, bound to `label` (a kid, a ledger key's name and ID)."""
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, secret, label.encode())
        return base64.urlsafe_b64encode(sealed).decode()

    def open_bytes(self, label: str, sealed: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(sealed)
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], label.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise KeyVaultError(
                f"signing key {label} cannot be opened: a different key-encryption key sealed "
                "it, or its sealed copy is damaged"
            ) from None
