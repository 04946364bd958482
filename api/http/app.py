"""The Litestar application: routes, error rendering, and the runtime's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig

from adapters.tracing import OpenTelemetryTracing
from api import shutdown
from api.bootstrap import Runtime, build, tracing_for
from api.http.admin.access import bearer_error_response, not_permitted_response
from api.http.admin.controllers import (
    COMPONENTS,
    AdminAlertsController,
    AdminAnalyticsController,
    AdminClientsController,
    AdminTokensController,
)
from api.http.admin.dashboard import dashboard, keep_session
from api.http.admin.dashboard import login as dashboard_login
from api.http.admin.dashboard import logout as dashboard_logout
from api.http.admin.dashboard import static_files as dashboard_static
from api.http.admin.keys import AdminKeysController
from api.http.admin.ledger import AdminLedgerController
from api.http.errors import (
    conflict_response,
    http_error_response,
    not_found_response,
    oauth_error_response,
    precondition_failed_response,
    unexpected_error_response,
    unprocessable_response,
)
from api.http.head_requests import HeadAsGet
from api.http.ledger.checkpoints import latest_checkpoint, ledger_keys, list_checkpoints
from api.http.oauth2.discovery import authorization_server_metadata
from api.http.oauth2.introspection import introspection_endpoint
from api.http.oauth2.revocation import revocation_endpoint
from api.http.oauth2.token import TokenRouteFirst, jwks, token_endpoint
from api.http.openapi_docs import ClosedStructs, complete_openapi
from api.http.ops.health import healthz, readyz
from api.http.ops.metrics import metrics
from api.http.ops.request_instrumentation import RequestInstrumentation
from api.http.ops.request_tracing import RequestTracing
from api.http.worker_tuning import tune_worker
from api.logs import configure_logging
from api.settings import Settings
from api.usecases.admin_access import BearerError
from api.usecases.analytics import AnalyticsRequestError
from api.usecases.client_admin import ClientNotFound, ConcurrentChange, VersionMismatch
from api.usecases.revocation import TokenNotFound
from domain.admin_scopes import NotPermitted
from domain.client import ClientCommandRejected
from domain.client_settings import InvalidClientSettings
from domain.oauth_errors import OAuthError


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Litestar:
    """The ASGI app; with no arguments (the uvicorn factory) settings come from the env."""
    server_process = settings is None and runtime is None
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    if runtime is None:  # a server process (each worker): JSON lines to stderr
        configure_logging(settings.log_level, json_lines=settings.log_format == "json")
    tracing = runtime.tracing if runtime else tracing_for(settings, "serve")

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if server_process:  # uvicorn's signal handlers are in place: SIGTERM also arms
            shutdown.chain_exit_deadline()  # the exit deadline, however stuck the stop is
        # A server process may leave the background jobs to serve's own process for them
        # (KEYLEDGER_BACKGROUND_JOBS, api/background.py).
        jobs_here = not server_process or not settings.jobs_in_own_process
        rt = runtime or build(settings, tracing=tracing, with_jobs=jobs_here)
        await rt.start()
        if server_process:
            tune_worker()
        app.state.runtime = rt
        try:
            yield
        finally:
            await rt.stop()

    app = Litestar(
        route_handlers=[
            token_endpoint,
            introspection_endpoint,
            revocation_endpoint,
            jwks,
            authorization_server_metadata,
            healthz,
            readyz,
            AdminClientsController,
            AdminTokensController,
            AdminAlertsController,
            AdminAnalyticsController,
            AdminKeysController,
            AdminLedgerController,
            latest_checkpoint,
            list_checkpoints,
            ledger_keys,
            metrics,
            dashboard,
            dashboard_login,
            dashboard_logout,
            keep_session,
            dashboard_static,
        ],
        on_startup=[complete_openapi],
        lifespan=[lifespan],
        exception_handlers={
            OAuthError: oauth_error_response,
            BearerError: bearer_error_response,
            NotPermitted: not_permitted_response,
            ClientNotFound: not_found_response,
            TokenNotFound: not_found_response,
            ConcurrentChange: conflict_response,
            VersionMismatch: precondition_failed_response,
            ClientCommandRejected: conflict_response,
            InvalidClientSettings: unprocessable_response,
            AnalyticsRequestError: unprocessable_response,
            HTTPException: http_error_response,
            Exception: unexpected_error_response,
        },
        openapi_config=OpenAPIConfig(
            title="keyledger", version="0.1.0", path="/schema", components=[COMPONENTS]
        ),
        plugins=[ClosedStructs()],  # before Litestar's own Struct plugin, which it refines
        debug=False,
        logging_config=None,  # configure_logging (structlog) owns the handlers
    )
    # Request ids, the access log and the latency histogram wrap Litestar's handler once,
    # outside the router: as per-route middleware they cost a quarter of the token rate.
    # Inside them, the token endpoint is reached before the router (api/http/oauth2/token.py).
    # HEAD runs as GET behind the token route, so token requests never pass through it.
    app.asgi_handler = RequestInstrumentation(
        TokenRouteFirst(HeadAsGet(app.asgi_handler), app), access_log=settings.access_log
    )
    if isinstance(tracing, OpenTelemetryTracing):  # off: not wrapped, no cost at all
        app.asgi_handler = RequestTracing(app.asgi_handler, tracing)
    return app
