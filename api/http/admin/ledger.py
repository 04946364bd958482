"""The admin API's ledger under `/admin/ledger`: proofs, a checkpoint now, a new ledger key.

Proofs need any admin scope; asking for a checkpoint and rotating the ledger's key need
`keyledger:admin:keys`. A proof names the event by its position (the `sequence` of its audit
message) or by aggregate id and version, and the tree size by a checkpoint's (the latest by
default), so what it proves can be checked against a checkpoint kept outside.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import Body as BodyParam
from litestar.params import QueryParameter
from litestar.response import Response

from api.http.admin.access import ADMIN_DEPENDENCIES, require_admin
from api.http.admin.controllers import NO_STORE, SECURITY, WhyText
from api.http.admin.openapi import ADMIN, INVALID, TOO_LARGE, ok
from api.http.errors import unprocessable_response
from api.http.runtime import runtime_of
from api.usecases.ledger_proofs import LedgerAdmin, LedgerQueries, checkpoint_row, key_row
from domain.admin_scopes import Admin
from domain.ledger import LedgerError


class InclusionProof(msgspec.Struct):
    position: int
    index: int
    size: int
    entry: str
    leaf_hash: str
    path: list[str]
    checkpoint: str | None


class ConsistencyProof(msgspec.Struct, rename={"old": "from", "new": "to"}):
    old: int
    new: int
    proof: list[str]
    from_checkpoint: str | None
    to_checkpoint: str | None


class CheckpointView(msgspec.Struct):
    size: int
    root: str
    note: str
    signed_at: str


class RequestedCheckpoint(msgspec.Struct):
    position: int
    checkpoint: CheckpointView | None


class LedgerKeyView(msgspec.Struct):
    name: str
    key_id: str
    verifier_key: str
    generated_at: str


class RotatedLedgerKey(msgspec.Struct):
    key: LedgerKeyView


class Why(msgspec.Struct, forbid_unknown_fields=True):
    reason: WhyText | None = None


def _queries(state: State) -> LedgerQueries:
    return runtime_of(state).ledger_queries


def _ledger_admin(state: State) -> LedgerAdmin:
    admin = runtime_of(state).ledger_admin
    assert admin is not None
    return admin


class AdminLedgerController(Controller):
    path = "/admin/ledger"
    tags = ["admin"]
    guards = [require_admin]
    dependencies = {
        **ADMIN_DEPENDENCIES,
        "ledger": Provide(_queries, sync_to_thread=False),
        "ledger_admin": Provide(_ledger_admin, sync_to_thread=False),
    }
    security = SECURITY
    cache_control = NO_STORE
    exception_handlers = {LedgerError: unprocessable_response}

    @get(
        "/proofs/inclusion",
        sync_to_thread=True,
        summary="An event's leaf and its RFC 9162 inclusion path to a checkpointed root",
        responses={200: ok(InclusionProof, "The leaf and its audit path"), **ADMIN, **INVALID},
    )
    def inclusion(
        self,
        admin: NamedDependency[Admin],
        ledger: NamedDependency[LedgerQueries],
        position: Annotated[
            int | None, QueryParameter(ge=1, description="the audit message's sequence")
        ] = None,
        aggregate: Annotated[
            UUID | None, QueryParameter(description="the event's aggregate id")
        ] = None,
        version: Annotated[int | None, QueryParameter(ge=1)] = None,
        size: Annotated[
            int | None, QueryParameter(ge=1, description="default: the last checkpoint's")
        ] = None,
    ) -> dict[str, Any]:
        event = (aggregate, version) if aggregate is not None and version is not None else None
        return ledger.inclusion(position=position, event=event, size=size, by=admin)

    @get(
        "/proofs/consistency",
        sync_to_thread=True,
        summary="The RFC 9162 consistency proof that the tree at `to` extends the tree at `from`",
        responses={200: ok(ConsistencyProof, "The proof"), **ADMIN, **INVALID},
    )
    def consistency(
        self,
        admin: NamedDependency[Admin],
        ledger: NamedDependency[LedgerQueries],
        from_size: Annotated[int, QueryParameter(name="from", ge=1)],
        to_size: Annotated[int, QueryParameter(name="to", ge=1)],
    ) -> dict[str, Any]:
        return ledger.consistency(from_size, to_size, by=admin)

    @post(
        "/checkpoints",
        sync_to_thread=True,
        summary="Ask for a checkpoint now; the answer waits up to 10 s for the one covering it",
        responses={
            201: ok(RequestedCheckpoint, "Signed, covering the request"),
            202: ok(RequestedCheckpoint, "Recorded; the ledger builder has not signed yet"),
            **ADMIN,
            **TOO_LARGE,
        },
    )
    def request_checkpoint(
        self,
        admin: NamedDependency[Admin],
        ledger_admin: NamedDependency[LedgerAdmin],
        data: Annotated[Why | None, BodyParam()] = None,
    ) -> Response[dict[str, Any]]:
        requested = ledger_admin.request_checkpoint(by=admin, reason=(data or Why()).reason)
        body = {
            "position": requested.position,
            "checkpoint": checkpoint_row(requested.checkpoint) if requested.checkpoint else None,
        }
        return Response(body, status_code=201 if requested.checkpoint else 202)

    @post(
        "/keys/rotate",
        status_code=201,
        sync_to_thread=True,
        summary="A new checkpoint-signing key; earlier checkpoints keep verifying with theirs",
        responses={201: ok(RotatedLedgerKey, "The new key"), **ADMIN, **TOO_LARGE},
    )
    def rotate_key(
        self,
        admin: NamedDependency[Admin],
        ledger_admin: NamedDependency[LedgerAdmin],
        data: Annotated[Why | None, BodyParam()] = None,
    ) -> dict[str, Any]:
        key = ledger_admin.rotate_key(by=admin, reason=(data or Why()).reason)
        return {"key": key_row(key)}
