"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.openapi import ResponseSpec


@get("/healthz", summary="The process is alive", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


class Readiness(msgspec.Struct):
    status: Literal["ready", "starting"]
    clients_position: int


@get(
    "/readyz",
    summary="The read model is loaded and the event writer runs",
    tags=["health"],
    responses={
        200: ResponseSpec(Readiness, description="Ready", generate_examples=False),
        503: ResponseSpec(
            Readiness, description="Starting: not ready yet", generate_examples=False
        ),
    },
)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    runtime = request.app.state.runtime
    ready = runtime.ready
    body = {
        "status": "ready" if ready else "starting",
        "clients_position": runtime.view.position,
    }
    return Response(body, status_code=200 if ready else 503)
