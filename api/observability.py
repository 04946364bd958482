"""`GET /metrics` (Prometheus text format) and the request-latency middleware."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.middleware import MiddlewareProtocol
from litestar.types import ASGIApp, Receive, Scope, Send

from adapters.metrics import REQUEST_SECONDS, LagCollector, exposition
from api.bootstrap import relay_name
from api.projection_status import projection_status


class RequestMetrics(MiddlewareProtocol):
    """Observes each request's latency under its route template (bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            endpoint = scope.get("path_template") or "unmatched"
            REQUEST_SECONDS.labels(endpoint, scope.get("method", "")).observe(
                time.perf_counter() - started
            )


@get(
    "/metrics",
    sync_to_thread=True,
    summary="Prometheus metrics of every worker process, and projection and relay lag",
    tags=["operations"],
)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    runtime = request.app.state.runtime
    lag = LagCollector(
        lambda: projection_status(runtime.ledger, relay_name(runtime.settings), datetime.now(UTC))
    )
    body, content_type = exposition(lag)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
