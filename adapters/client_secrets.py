"""Client secrets: generated here, stored only as a keyed hash, compared in constant time.

Secrets carry 256 random bits, so a slow password hash buys nothing: HMAC-SHA-256 with a
server-side pepper keeps a stolen database from confirming guesses without the pepper.
"""

from __future__ import annotations

import base64
import hmac
import secrets

SECRET_PREFIX = "kl_secret_"  # noqa: S105 - a prefix for secret scanners, not a secret
HASH_SCHEME = "hmac-sha256"
PEPPER_FILE = "secret-pepper"


def generate_secret() -> str:
    """A new secret: the scanner-friendly prefix and 256 random bits, base64url."""
    return SECRET_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


class SecretHasher:
    """Keyed hashing of client secrets with the server pepper."""

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 32:
            raise ValueError("the secret pepper must be at least 32 bytes")
        self._pepper = pepper

    def hash(self, secret: str) -> str:
        # every token request hashes the presented secret: one call, no `hmac.HMAC` object
        digest = hmac.digest(self._pepper, secret.encode("utf-8", "surrogatepass"), "sha256")
        return f"{HASH_SCHEME}${digest.hex()}"

    def matches(self, secret: str, secret_hash: str) -> bool:
        """Constant-time comparison of a presented secret with a stored hash."""
        return hmac.compare_digest(self.hash(secret), secret_hash)
