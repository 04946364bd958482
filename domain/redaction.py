"""Redaction of anything shaped like a keyledger client secret in text a caller chose.

Secrets carry a fixed prefix (`kl_secret_`) followed by base64url, so a secret pasted where
a client id, a user agent or a scope belongs can be recognised and replaced before the text
is published, logged or echoed.
"""

from __future__ import annotations

import re

SECRET_PREFIX = "kl_secret_"  # noqa: S105 - the prefix secret scanners look for
REDACTED = f"{SECRET_PREFIX}[REDACTED]"
_SECRET = re.compile(re.escape(SECRET_PREFIX) + r"[A-Za-z0-9_-]+")


def redact(text: str) -> str:
    """`text` with every secret-shaped substring replaced by `kl_secret_[REDACTED]`."""
    return _SECRET.sub(REDACTED, text) if SECRET_PREFIX in text else text


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)
