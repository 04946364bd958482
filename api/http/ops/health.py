"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.openapi import ResponseSpec

from api.http.runtime import runtime_of


@get("/healthz", summary="The process is alive", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


class Readiness(msgspec.Struct):
    status: Literal["ready", "starting", "failing"]
    clients_position: int
    failing: dict[str, str] = {}  # each failing background loop and its last error


@get(
    "/readyz",
    summary="The read model is loaded and the event writer runs",
    tags=["health"],
    responses={
        200: ResponseSpec(Readiness, description="Ready", generate_examples=False),
        503: ResponseSpec(
            Readiness,
            description="Starting, or a background loop (a read model, the signing keys, "
            "analytics) is failing: `failing` names it",
            generate_examples=False,
        ),
    },
)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    runtime = runtime_of(request.app.state)
    ready, failing = runtime.ready, runtime.failing
    body = {
        "status": "ready" if ready else "failing" if failing else "starting",
        "clients_position": runtime.view.position,
        "failing": failing,
    }
    return Response(body, status_code=200 if ready else 503)
