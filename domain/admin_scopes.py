"""Least privilege on the admin plane: which admin scope permits which kind of command.

An admin is a client whose token carries one or more admin scopes (still allowed to it: a
scope taken away stops counting at once). `keyledger:admin` can do everything; the others
each permit one kind of change, and every admin scope may read (lists, history, analytics,
alerts, the dashboard): an operator who may revoke tokens must be able to find them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

FULL = "keyledger:admin"
READ = "keyledger:admin:read"
CLIENTS = "keyledger:admin:clients"
TOKENS = "keyledger:admin:tokens"
KEYS = "keyledger:admin:keys"
ADMIN_SCOPES = (FULL, READ, CLIENTS, TOKENS, KEYS)


class Permission(enum.Enum):
    """A kind of admin command; its value is the narrowest scope that permits it."""

    READ = READ
    MANAGE_CLIENTS = CLIENTS
    REVOKE_TOKENS = TOKENS
    MANAGE_KEYS = KEYS
    MANAGE_ADMINS = FULL


def to_manage(*held_scopes: Iterable[str]) -> Permission:
    """What managing a client needs, given the scopes it holds before and after the change.

    Client management may not reach the admin plane itself: registering an admin client,
    granting an admin scope, or changing, rotating or suspending a client that holds one
    needs the full scope. Otherwise `keyledger:admin:clients` could mint itself more power
    (grant its own client `keyledger:admin`, or rotate a full admin's secret and sign in as it).
    """
    if any(set(scopes) & set(ADMIN_SCOPES) for scopes in held_scopes):
        return Permission.MANAGE_ADMINS
    return Permission.MANAGE_CLIENTS


def permits(scopes: Iterable[str], permission: Permission) -> bool:
    held = set(scopes)
    if FULL in held or permission.value in held:
        return True
    return permission is Permission.READ and bool(held & set(ADMIN_SCOPES))


class NotPermitted(Exception):
    """The caller's admin scopes do not permit this command (RFC 6750 `insufficient_scope`)."""

    def __init__(self, permission: Permission) -> None:
        wider = "" if permission.value == FULL else f" (or {FULL})"
        super().__init__(f"this needs scope {permission.value}{wider}")
        self.permission = permission


@dataclass(frozen=True)
class Admin:
    """Who runs an admin command: the actor recorded in its events, and what it may do."""

    actor: str
    scopes: frozenset[str]

    @classmethod
    def with_scopes(cls, actor: str, scopes: Iterable[str]) -> Admin:
        return cls(actor, frozenset(s for s in scopes if s in ADMIN_SCOPES))

    @classmethod
    def installation(cls, actor: str) -> Admin:
        """A process of the installation itself (`admin bootstrap`, the detector's response):
        it holds the installation's secrets, so it may do what the full scope may."""
        return cls(actor, frozenset({FULL}))

    def may(self, permission: Permission) -> bool:
        return permits(self.scopes, permission)

    def require(self, permission: Permission) -> None:
        if not self.may(permission):
            raise NotPermitted(permission)
