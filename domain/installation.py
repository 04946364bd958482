"""`Installation`: which key-encryption key and pepper this event store belongs to.

The first start records a fingerprint of each (never the value). Every later process compares
its own against them before it reads a sealed key or hashes a secret, so a command run with the
wrong keys directory cannot seal a signing key nobody can open, or register a client whose
secret no replica will ever match (DESIGN.md invariant 9).
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

INSTALLATION_ID = uuid5(NAMESPACE_URL, "urn:keyledger:installation")
KEK_VARIABLE = "KEYLEDGER_KEY_ENCRYPTION_KEY"
PEPPER_VARIABLE = "KEYLEDGER_SECRET_PEPPER"


class WrongInstallationSecret(Exception):
    """This process's key-encryption key or pepper is not the installation's."""

    def __init__(self, variable: str) -> None:
        super().__init__(
            f"{variable} (or its file in KEYLEDGER_KEYS_DIR) is not this installation's: "
            "use the same value as the servers; nothing was written"
        )
        self.variable = variable


class Installation(Aggregate):
    """The installation's identity; one per event store (`INSTALLATION_ID`)."""

    class Initialised(Aggregate.Created):
        """The store was set up with this key-encryption key and pepper (fingerprints)."""

        kek_fingerprint: str
        pepper_fingerprint: str
        at: datetime

    @staticmethod
    def create_id(kek_fingerprint: str, pepper_fingerprint: str, at: datetime) -> UUID:
        return INSTALLATION_ID

    def __init__(self, kek_fingerprint: str, pepper_fingerprint: str, at: datetime) -> None:
        self.kek_fingerprint = kek_fingerprint
        self.pepper_fingerprint = pepper_fingerprint
        self.initialised_at = at

    def check(self, *, kek_fingerprint: str, pepper_fingerprint: str) -> None:
        """Raise, naming the variable, unless both secrets are the installation's."""
        if kek_fingerprint != self.kek_fingerprint:
            raise WrongInstallationSecret(KEK_VARIABLE)
        if pepper_fingerprint != self.pepper_fingerprint:
            raise WrongInstallationSecret(PEPPER_VARIABLE)
