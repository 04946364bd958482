"""`GET /metrics` (Prometheus text format 0.0.4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.enums import MediaType

from adapters import metrics as m
from api.bootstrap import relay_name
from api.http.runtime import runtime_of
from api.usecases.projection_status import projection_status

# Litestar appends the charset to a text/ media type itself: once, not twice.
MEDIA_TYPE = m.CONTENT_TYPE.replace("; charset=utf-8", "")
BUILD_INFO = m.BuildInfo("serve")


@get(
    "/metrics",
    sync_to_thread=True,
    summary="Prometheus metrics of every worker process, projection and relay lag, and the "
    "signing key's age",
    tags=["operations"],
    media_type=MediaType.TEXT,
)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    runtime = runtime_of(request.app.state)
    m.CLIENT_LABELS.rank()  # free places go to the busiest clients so far
    lag = m.LagCollector(
        lambda: projection_status(runtime.ledger, relay_name(runtime.settings), datetime.now(UTC))
    )
    collectors: list[Any] = [BUILD_INFO, lag]
    if runtime.key_keeper is not None:
        collectors.append(m.SigningKeyCollector(runtime.key_keeper.rotation_clock))
    return Response(
        m.exposition(*collectors, single_worker=runtime.settings.workers == 1),
        media_type=MEDIA_TYPE,
        headers={"Cache-Control": "no-store"},
    )
