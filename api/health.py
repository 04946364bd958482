"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get


@get("/healthz", summary="The process is alive", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", summary="The read model is loaded and the event writer runs", tags=["health"])
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    runtime = request.app.state.runtime
    ready = runtime.ready
    body = {
        "status": "ready" if ready else "starting",
        "clients_position": runtime.view.position,
    }
    return Response(body, status_code=200 if ready else 503)
