"""The admin API's signing keys under `/admin/keys`: list them, and rotate to a new one.

A rotation is an admin call, not a command run against the database, so the server seals the
new key with the installation's key-encryption key and no admin machine ever holds it. Any
admin scope may list; rotating needs `keyledger:admin:keys` (the use case's rule). The new
key is in this replica's ring before the answer, and in every other one's within the follow
interval; it signs once its pre-publication delay has passed.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import Body as BodyParam

from api.bootstrap import Runtime
from api.http.admin.access import ADMIN_DEPENDENCIES, require_admin
from api.http.admin.controllers import NO_STORE, SECURITY, WhyText
from api.http.admin.openapi import (
    ADMIN,
    INVALID,
    KEY_CONFLICT,
    TOO_LARGE,
    Keys,
    RotatedKey,
    ok,
)
from api.http.errors import conflict_response, unprocessable_response
from api.http.runtime import RuntimeDependency
from api.usecases.client_admin import parse_duration
from api.usecases.signing_keys import SigningKeyAdmin, key_row
from domain.admin_scopes import Admin
from domain.signing_keys import InvalidKeyTurn, SigningKeyRejected

log = logging.getLogger("keyledger.admin")


class KeyRotation(msgspec.Struct, forbid_unknown_fields=True):
    """`delay`: `30s`, `15m`, `24h`, `7d` or seconds; absent, KEYLEDGER_KEY_PREPUBLISH_SECONDS."""

    delay: str | int | None = None
    reason: WhyText | None = None


def _fold(runtime: Runtime) -> None:
    """This replica's ring takes the new key now. The rotation is committed by then, so a
    failure here must not fail the answer: the keeper catches up on its next poll."""
    if runtime.key_keeper is None:
        return
    try:
        runtime.key_keeper.catch_up()
    except Exception:
        log.exception("the key ring could not fold the rotation yet")


class AdminKeysController(Controller):
    path = "/admin/keys"
    tags = ["admin"]
    guards = [require_admin]
    dependencies = ADMIN_DEPENDENCIES
    security = SECURITY
    cache_control = NO_STORE
    exception_handlers = {
        SigningKeyRejected: conflict_response,  # a rotation already pending, a racing one
        InvalidKeyTurn: unprocessable_response,  # a delay out of bounds
    }

    @get(
        "/",
        sync_to_thread=True,
        summary="Every signing key: its status, when it signs, retires and leaves the JWKS",
        responses={200: ok(Keys, "Oldest first"), **ADMIN},
    )
    def list_keys(
        self, admin: NamedDependency[Admin], keys: NamedDependency[SigningKeyAdmin]
    ) -> dict[str, Any]:
        return {"keys": keys.list_keys(by=admin)}

    @post(
        "/rotate",
        status_code=201,
        sync_to_thread=True,
        summary="A new signing key, in the JWKS now, signing after the delay; the current "
        "one retires then",
        responses={
            201: ok(RotatedKey, "The new key"),
            **ADMIN,
            **TOO_LARGE,
            **INVALID,
            **KEY_CONFLICT,
        },
    )
    def rotate(
        self,
        admin: NamedDependency[Admin],
        keys: NamedDependency[SigningKeyAdmin],
        runtime: RuntimeDependency,
        data: Annotated[KeyRotation | None, BodyParam()] = None,
    ) -> dict[str, Any]:
        rotation = data or KeyRotation()
        delay = rotation.delay
        if delay is None:
            delay = runtime.settings.key_prepublish_seconds
        added = keys.rotate(delay=parse_duration(str(delay)), by=admin, reason=rotation.reason)
        _fold(runtime)
        return {"key": key_row(added, runtime.clock.now())}
