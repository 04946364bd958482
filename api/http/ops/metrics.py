"""`GET /metrics` (Prometheus text format)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.enums import MediaType

from adapters.metrics import LagCollector, exposition
from api.bootstrap import relay_name
from api.http.runtime import runtime_of
from api.usecases.projection_status import projection_status


@get(
    "/metrics",
    sync_to_thread=True,
    summary="Prometheus metrics of every worker process, and projection and relay lag",
    tags=["operations"],
    media_type=MediaType.TEXT,
)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    runtime = runtime_of(request.app.state)
    lag = LagCollector(
        lambda: projection_status(runtime.ledger, relay_name(runtime.settings), datetime.now(UTC))
    )
    body, content_type = exposition(lag)
    # Litestar appends the charset to a text/ media type itself: once, not twice.
    media_type = content_type.replace("; charset=utf-8", "")
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})
