"""The ledger's public face: its checkpoints and public keys, for anyone to keep.

`GET /ledger/checkpoint` is the latest signed checkpoint as a C2SP signed note (text/plain),
the form transparency-log witnesses and monitors read; `/ledger/checkpoints` pages through
every one, oldest first; `/ledger/keys` lists the verifier keys. Keep checkpoints somewhere the
operator of this server does not control: that is what makes a silent rewrite detectable.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Response

from api.http.admin.ledger import CheckpointView, LedgerKeyView
from api.http.admin.openapi import ErrorBody
from api.http.runtime import runtime_of
from api.usecases.ledger_proofs import checkpoint_row, key_row

NOTE_TYPE = "text/plain; charset=utf-8"


class Checkpoints(msgspec.Struct):
    checkpoints: list[CheckpointView]


class LedgerKeys(msgspec.Struct):
    keys: list[LedgerKeyView]


def _spec(body: Any, description: str, media_type: str = "application/json") -> ResponseSpec:
    return ResponseSpec(
        data_container=body, description=description, generate_examples=False, media_type=media_type
    )


BAD_QUERY = {400: _spec(ErrorBody, "invalid_request: a parameter out of range")}


@get(
    "/ledger/checkpoint",
    sync_to_thread=True,
    summary="The latest signed checkpoint, a C2SP signed note",
    tags=["ledger"],
    responses={
        200: _spec(str, "origin, tree size, base64 root, blank line, signature", "text/plain"),
        404: _spec(ErrorBody, "not_found: no checkpoint has been signed yet"),
    },
)
def latest_checkpoint(request: Request[Any, Any, Any]) -> Response[Any]:
    latest = runtime_of(request.app.state).ledger_queries.latest()
    if latest is None:
        return Response(
            {"error": "not_found", "error_description": "no checkpoint has been signed yet"},
            status_code=404,
            headers={"Cache-Control": "no-store"},
        )
    return Response(latest.note, media_type=NOTE_TYPE, headers={"Cache-Control": "no-cache"})


@get(
    "/ledger/checkpoints",
    sync_to_thread=True,
    summary="Signed checkpoints, oldest first",
    tags=["ledger"],
    responses={200: _spec(Checkpoints, "Up to `limit` checkpoints"), **BAD_QUERY},
)
def list_checkpoints(
    request: Request[Any, Any, Any],
    after: Annotated[int, QueryParameter(ge=-1, description="tree sizes above this")] = -1,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    found = runtime_of(request.app.state).ledger_queries.checkpoints(after, limit)
    return {"checkpoints": [checkpoint_row(c) for c in found]}


@get(
    "/ledger/keys",
    sync_to_thread=True,
    summary="Every ledger public key, oldest first, as signed-note verifier keys",
    tags=["ledger"],
    responses={200: _spec(LedgerKeys, "The keys")},
)
def ledger_keys(request: Request[Any, Any, Any]) -> dict[str, Any]:
    keys = runtime_of(request.app.state).ledger_queries.public_keys()
    return {"keys": [key_row(k) for k in keys]}
