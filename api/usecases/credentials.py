"""What a client presented to authenticate: an id with a secret or a signed assertion."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Credentials:
    """A presented client id and secret (or signed assertion), and how they were presented."""

    client_id: str
    secret: str
    method: str
    assertion: str | None = None

    @property
    def used_basic(self) -> bool:
        return self.method == "client_secret_basic"

    def __repr__(self) -> str:  # never show the secret
        return f"Credentials(client_id={self.client_id!r}, method={self.method!r})"
