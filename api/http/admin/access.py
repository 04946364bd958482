"""Who calls the admin plane: the bearer guard, and the values handlers receive by injection.

The guard validates the token once per request (`api.usecases.admin_access`); handlers then
declare what they need as parameters (`admin: Admin`, `clients: ClientAdmin`, ...), which
Litestar's dependency injection provides from the runtime: no handler looks anything up on
`app.state` itself.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler

from api.bootstrap import Runtime
from api.http.runtime import runtime_of
from api.usecases.admin_access import BearerError, insufficient_scope
from api.usecases.alerts import AlertQueries
from api.usecases.analytics import AnalyticsReports
from api.usecases.client_admin import ClientAdmin
from api.usecases.revocation import TokenRevoker
from api.usecases.signing_keys import SigningKeyAdmin
from domain.admin_scopes import Admin, NotPermitted


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: a valid token with an admin scope; the admin is kept on the request state."""
    admin = runtime_of(connection.app.state).admin_verifier.verify(
        connection.headers.get("authorization")
    )
    connection.state.admin = admin  # the access log names the actor too


def _admin(request: Request[Any, Any, Any]) -> Admin:
    admin: Admin = request.state.admin
    return admin


def _runtime(state: State) -> Runtime:
    return runtime_of(state)


def _clients(state: State) -> ClientAdmin:
    return runtime_of(state).admin


def _tokens(state: State) -> TokenRevoker:
    return runtime_of(state).revoker


def _alerts(state: State) -> AlertQueries:
    return runtime_of(state).alert_queries


def _reports(state: State) -> AnalyticsReports:
    return runtime_of(state).reports


def _keys(state: State) -> SigningKeyAdmin:
    return runtime_of(state).key_admin


ADMIN_DEPENDENCIES = {
    "admin": Provide(_admin, sync_to_thread=False),
    "runtime": Provide(_runtime, sync_to_thread=False),
    "clients": Provide(_clients, sync_to_thread=False),
    "tokens": Provide(_tokens, sync_to_thread=False),
    "alerts": Provide(_alerts, sync_to_thread=False),
    "reports": Provide(_reports, sync_to_thread=False),
    "keys": Provide(_keys, sync_to_thread=False),
}


def bearer_error_response(request: Request[Any, Any, Any], exc: BearerError) -> Response[Any]:
    body = {"error": exc.error or "unauthorized", "error_description": exc.description}
    return Response(
        body, status_code=exc.status_code, headers={"WWW-Authenticate": exc.challenge()}
    )


def not_permitted_response(request: Request[Any, Any, Any], exc: NotPermitted) -> Response[Any]:
    """A use case refused the admin's scopes: RFC 6750 §3.1 `insufficient_scope`, 403."""
    return bearer_error_response(request, insufficient_scope(exc))
