"""The admin HTTP API under `/admin`: JSON over the same use cases as the CLI.

Every request needs a bearer access token from this server with an admin scope; which
command each scope permits is the use case's rule (`domain.admin_scopes`), and the token's
client id is the actor recorded in every event. Handlers receive the admin and the use
cases by dependency injection (`api.http.admin.access`). Writes run in a worker thread (the
event store has no async API) and then fold into this replica's clients model at once, so
the answer, and the next token request here, already see the change.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import Body as BodyParam
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from api.bootstrap import Runtime
from api.http.admin.access import ADMIN_DEPENDENCIES, require_admin
from api.http.admin.openapi import (
    ADMIN,
    CHANGED,
    COMMAND,
    INVALID,
    NOT_FOUND,
    TOO_LARGE,
    Alerts,
    ClientsReport,
    ClientView,
    HistoryEntry,
    Issuance,
    PendingClient,
    RegisteredClient,
    RegisteredPending,
    RevokedToken,
    RFC3339Query,
    RotatedClient,
    RotatedPending,
    TokenView,
    TopClients,
    ok,
)
from api.http.runtime import RuntimeDependency
from api.usecases.alerts import AlertQueries
from api.usecases.analytics import AnalyticsReports, report_window
from api.usecases.client_admin import (
    ClientAdmin,
    VersionMismatch,
    canonical_client_id,
    parse_duration,
)
from api.usecases.client_admin import ClientChanges as Changes
from api.usecases.client_admin import Quotas as QuotaChange
from api.usecases.revocation import TokenRevoker
from api.usecases.timestamps import parse_rfc3339
from domain.admin_scopes import Admin
from domain.client import CLIENT_SECRET_BASIC
from domain.client_settings import DEFAULT_TOKEN_TTL, ClientSettings

log = logging.getLogger("keyledger.admin")
MAX_REASON = 1000  # characters: a sentence or a ticket reference, recorded in every event
WhyText = Annotated[str, msgspec.Meta(max_length=MAX_REASON)]
Body = dict[str, Any]
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
NO_STORE = CacheControlHeader(no_store=True)
COMPONENTS = Components(
    security_schemes={
        "bearer": SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="an access token from /oauth2/token with an admin scope "
            "(keyledger:admin, or keyledger:admin:read, :clients, :tokens, :keys)",
        )
    }
)


class NewClient(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    allowed_scopes: list[str]
    default_scopes: list[str] | None = None
    token_ttl: int = DEFAULT_TOKEN_TTL
    audiences: list[str] = []
    default_audience: str | None = None
    reason: WhyText | None = None
    # RFC 7591 §2: client_secret_basic (a generated secret) or private_key_jwt (with jwks).
    token_endpoint_auth_method: str = CLIENT_SECRET_BASIC
    jwks: dict[str, Any] | None = None


class NewKeys(msgspec.Struct, forbid_unknown_fields=True):
    jwks: dict[str, Any]
    reason: WhyText | None = None


class Quotas(msgspec.Struct, forbid_unknown_fields=True):
    """Both quotas replace the old ones; null: no limit."""

    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None


class ClientChanges(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH: any subset; all of it is recorded atomically (one save, several events)."""

    name: str | None = None
    allowed_scopes: list[str] | None = None
    default_scopes: list[str] | None = None
    token_ttl: int | None = None
    audiences: list[str] | None = None
    default_audience: str | None = None
    quotas: Quotas | None = None
    reason: WhyText | None = None


class Rotation(msgspec.Struct, forbid_unknown_fields=True):
    grace: str | int = "24h"
    reason: WhyText | None = None


class Reason(msgspec.Struct, forbid_unknown_fields=True):
    reason: WhyText | None = None


class TokenRevocation(msgspec.Struct, forbid_unknown_fields=True):
    before: str | None = None
    secret_generation: int | None = None
    reason: WhyText | None = None


_VERSION = re.compile(r'(W/)?"?([0-9]{1,9})"?', re.ASCII)


def _expected_version(request: Request[Any, Any, Any]) -> int | None:
    """`If-Match: "7"` makes a command fail with 412 unless the client is at version 7."""
    value = request.headers.get("if-match")
    if value is None or value.strip() == "*":  # RFC 9110 §13.1.1: any current version
        return None
    match = _VERSION.fullmatch(value.strip())
    if match is None:
        raise VersionMismatch('If-Match must be a client version, as in its ETag ("7")')
    return int(match.group(2))


def _view(runtime: Runtime, client_id: str, version: int = 0) -> Body:
    """The client as this replica sees it after folding the write just made (at `version`).

    Called after a commit, so it must not fail the request: an error would tell the caller
    the command failed when it did not (and hide a new secret). If this replica cannot fold
    the change now, the answer says what was committed and the follower catches up later.
    """
    try:
        runtime.follower.catch_up()
    except Exception:
        log.exception("clients model could not fold the admin write to %s yet", client_id)
    record = runtime.view.get(client_id)
    if record is None or record.version < version:
        return {"client_id": client_id, "version": version, "pending": True}
    view: Body = record.public_view()
    return view


def _quotas(quotas: Quotas | None) -> QuotaChange | None:
    if quotas is None:
        return None
    return QuotaChange(quotas.tokens_per_minute, quotas.tokens_per_day)


class AdminClientsController(Controller):
    path = "/admin/clients"
    tags = ["admin"]
    guards = [require_admin]
    dependencies = ADMIN_DEPENDENCIES
    security = SECURITY
    cache_control = NO_STORE  # answers may hold a new secret, and always client state

    @post(
        "/",
        status_code=201,
        sync_to_thread=True,
        summary="Register a client (secret shown once)",
        responses={
            201: ok(RegisteredClient | RegisteredPending, "The new client, with its secret"),
            **ADMIN,
            **TOO_LARGE,
            **INVALID,
        },
    )
    def register(
        self,
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        data: JSONBody[NewClient],
    ) -> Body:
        settings = ClientSettings.create(
            name=data.name,
            allowed_scopes=data.allowed_scopes,
            default_scopes=data.default_scopes,
            token_ttl=data.token_ttl,
            audiences=data.audiences,
            default_audience=data.default_audience,
        )
        registered = clients.register(
            settings,
            by=admin,
            reason=data.reason,
            auth_method=data.token_endpoint_auth_method,
            jwks=data.jwks,
        )
        view = _view(runtime, registered.client_id, 1)
        if registered.client_secret is None:
            return view
        return {**view, "client_secret": registered.client_secret}

    @get(
        "/",
        sync_to_thread=True,
        summary="List clients, now or from a point-in-time copy",
        responses={200: ok(list[ClientView], "Every client"), **ADMIN, **NOT_FOUND},
    )
    def list_clients(
        self,
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        as_of_copy: FromQuery[str | None] = None,
    ) -> list[Body]:
        if as_of_copy is None:
            return [r.public_view() for r in clients.listing(runtime.view, by=admin)]
        return [r.public_view() for r in clients.listing_as_of(as_of_copy, by=admin)]

    @get(
        "/{client_id:str}",
        sync_to_thread=True,
        summary="A client, now or as it was ?at=RFC3339",
        responses={
            200: ok(ClientView | PendingClient, "The client"),
            **ADMIN,
            **NOT_FOUND,
            **INVALID,
        },
    )
    def show(
        self,
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        client_id: FromPath[str],
        at: RFC3339Query = None,
    ) -> Body:
        client_id = canonical_client_id(client_id)
        if at is not None:
            return clients.state_at(client_id, parse_rfc3339(at), by=admin).public_view()
        return _view(runtime, client_id, clients.show(client_id, by=admin).version)

    @patch(
        "/{client_id:str}",
        sync_to_thread=True,
        summary="Change name, scopes, lifetime, audiences",
        responses={**CHANGED, **TOO_LARGE},
    )
    def update(
        self,
        request: Request[Any, Any, Any],
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        client_id: FromPath[str],
        data: JSONBody[ClientChanges],
    ) -> Body:
        changes = Changes(
            name=data.name,
            allowed_scopes=data.allowed_scopes,
            default_scopes=data.default_scopes,
            token_ttl=data.token_ttl,
            audiences=data.audiences,
            default_audience=data.default_audience,
            quotas=_quotas(data.quotas),
        )
        client_id = canonical_client_id(client_id)
        changed = clients.update(
            client_id,
            changes,
            by=admin,
            reason=data.reason,
            expected_version=_expected_version(request),
        )
        return _view(runtime, client_id, changed.version)

    @post(
        "/{client_id:str}/secret/rotate",
        status_code=200,
        sync_to_thread=True,
        summary="New secret (shown once); the previous works for the grace period",
        responses={
            200: ok(RotatedClient | RotatedPending, "The new secret"),
            **COMMAND,
            **TOO_LARGE,
        },
    )
    def rotate(
        self,
        request: Request[Any, Any, Any],
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        client_id: FromPath[str],
        data: Annotated[Rotation | None, BodyParam()] = None,
    ) -> Body:
        rotation, client_id = data or Rotation(), canonical_client_id(client_id)
        created = clients.rotate_secret(
            client_id,
            grace=parse_duration(str(rotation.grace)),
            by=admin,
            reason=rotation.reason,
            expected_version=_expected_version(request),
        )
        return {
            **_view(runtime, client_id),
            "client_secret": created.client_secret,
            "secret_generation": created.generation,
        }

    @put(
        "/{client_id:str}/jwks",
        sync_to_thread=True,
        summary="Replace a private_key_jwt client's public keys (a JWK Set)",
        responses={**CHANGED, **TOO_LARGE},
    )
    def replace_keys(
        self,
        request: Request[Any, Any, Any],
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        client_id: FromPath[str],
        data: JSONBody[NewKeys],
    ) -> Body:
        client_id = canonical_client_id(client_id)
        changed = clients.replace_keys(
            client_id,
            data.jwks,
            by=admin,
            reason=data.reason,
            expected_version=_expected_version(request),
        )
        return _view(runtime, client_id, changed.version)

    @post(
        "/{client_id:str}/secret/revoke-previous",
        status_code=200,
        sync_to_thread=True,
        summary="End the previous secret's grace period now",
        responses={**CHANGED, **TOO_LARGE},
    )
    def revoke_previous(
        self,
        request: Request[Any, Any, Any],
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        client_id: FromPath[str],
        data: Annotated[Reason | None, BodyParam()] = None,
    ) -> Body:
        client_id = canonical_client_id(client_id)
        changed = clients.revoke_previous_secret(
            client_id,
            by=admin,
            reason=(data or Reason()).reason,
            expected_version=_expected_version(request),
        )
        return _view(runtime, client_id, changed.version)

    @post(
        "/{client_id:str}/suspend",
        status_code=200,
        sync_to_thread=True,
        summary="Refuse the client everywhere within 1 s (reason required)",
        responses={**CHANGED, **TOO_LARGE},
    )
    def suspend(
        self,
        request: Request[Any, Any, Any],
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        client_id: FromPath[str],
        data: JSONBody[Reason],
    ) -> Body:
        client_id = canonical_client_id(client_id)
        changed = clients.suspend(
            client_id, by=admin, reason=data.reason, expected_version=_expected_version(request)
        )
        return _view(runtime, client_id, changed.version)

    @post(
        "/{client_id:str}/reactivate",
        status_code=200,
        sync_to_thread=True,
        summary="Lift a suspension",
        responses={**CHANGED, **TOO_LARGE},
    )
    def reactivate(
        self,
        request: Request[Any, Any, Any],
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        client_id: FromPath[str],
        data: Annotated[Reason | None, BodyParam()] = None,
    ) -> Body:
        client_id = canonical_client_id(client_id)
        changed = clients.reactivate(
            client_id,
            by=admin,
            reason=(data or Reason()).reason,
            expected_version=_expected_version(request),
        )
        return _view(runtime, client_id, changed.version)

    @post(
        "/{client_id:str}/tokens/revoke",
        status_code=200,
        sync_to_thread=True,
        summary="Void the client's tokens issued before a time (default now)",
        responses={**CHANGED, **TOO_LARGE},
    )
    def revoke_tokens(
        self,
        request: Request[Any, Any, Any],
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        client_id: FromPath[str],
        data: Annotated[TokenRevocation | None, BodyParam()] = None,
    ) -> Body:
        revocation, client_id = data or TokenRevocation(), canonical_client_id(client_id)
        changed = clients.revoke_tokens(
            client_id,
            by=admin,
            cutoff=parse_rfc3339(revocation.before) if revocation.before else None,
            secret_generation=revocation.secret_generation,
            reason=revocation.reason,
            expected_version=_expected_version(request),
        )
        return _view(runtime, client_id, changed.version)

    @delete(
        "/{client_id:str}",
        status_code=200,
        sync_to_thread=True,
        summary="Decommission: never authenticates again; history stays",
        responses=CHANGED,
    )
    def delete_client(
        self,
        request: Request[Any, Any, Any],
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        runtime: RuntimeDependency,
        client_id: FromPath[str],
        reason: Annotated[str | None, Parameter(max_length=MAX_REASON)] = None,
    ) -> Body:
        client_id = canonical_client_id(client_id)
        changed = clients.delete(
            client_id, by=admin, reason=reason, expected_version=_expected_version(request)
        )
        return _view(runtime, client_id, changed.version)

    @get(
        "/{client_id:str}/history",
        sync_to_thread=True,
        summary="Every change: when, who, what, why",
        responses={200: ok(list[HistoryEntry], "Oldest first"), **ADMIN, **NOT_FOUND},
    )
    def history(
        self,
        admin: NamedDependency[Admin],
        clients: NamedDependency[ClientAdmin],
        client_id: FromPath[str],
    ) -> list[Body]:
        return clients.history(client_id, by=admin)


class AdminTokensController(Controller):
    path = "/admin/tokens"
    tags = ["admin"]
    guards = [require_admin]
    dependencies = ADMIN_DEPENDENCIES
    security = SECURITY
    cache_control = NO_STORE

    @get(
        "/{jti:str}",
        sync_to_thread=True,
        summary="A token's lineage, state and history",
        responses={200: ok(TokenView, "The token"), **ADMIN, **NOT_FOUND},
    )
    def show(
        self,
        admin: NamedDependency[Admin],
        tokens: NamedDependency[TokenRevoker],
        jti: FromPath[str],
    ) -> Body:
        return tokens.history(jti, by=admin)

    @post(
        "/{jti:str}/revoke",
        status_code=200,
        sync_to_thread=True,
        summary="Revoke one token (a second revocation writes nothing)",
        responses={
            200: ok(RevokedToken, "The token; revoked_now: this call revoked it"),
            **ADMIN,
            **TOO_LARGE,
            **NOT_FOUND,
        },
    )
    def revoke(
        self,
        admin: NamedDependency[Admin],
        tokens: NamedDependency[TokenRevoker],
        jti: FromPath[str],
        data: Annotated[Reason | None, BodyParam()] = None,
    ) -> Body:
        revoked = tokens.revoke_by_admin(jti, by=admin, reason=(data or Reason()).reason)
        return {**tokens.history(jti, by=admin), "revoked_now": revoked}


class AdminAlertsController(Controller):
    path = "/admin/alerts"
    tags = ["admin"]
    guards = [require_admin]
    dependencies = ADMIN_DEPENDENCIES
    security = SECURITY
    cache_control = NO_STORE

    @get(
        "/",
        sync_to_thread=True,
        summary="Alerts the detector raised, newest first",
        responses={200: ok(Alerts, "The alerts"), **ADMIN, **INVALID},
    )
    def list_alerts(
        self,
        admin: NamedDependency[Admin],
        alerts: NamedDependency[AlertQueries],
        since: RFC3339Query = None,
        rule: FromQuery[str | None] = None,
        limit: FromQuery[int] = 100,
    ) -> Body:
        found = alerts.recent(
            by=admin, since=parse_rfc3339(since) if since else None, rule=rule, limit=limit
        )
        return {"alerts": [a.to_dict() for a in found]}


def _time(text: str | None) -> datetime | None:
    return parse_rfc3339(text) if text else None


class AdminAnalyticsController(Controller):
    path = "/admin/analytics"
    tags = ["admin"]
    guards = [require_admin]
    dependencies = ADMIN_DEPENDENCIES
    security = SECURITY
    cache_control = NO_STORE

    @get(
        "/issuance",
        sync_to_thread=True,
        summary="Tokens issued and revoked per client per hour or day",
        responses={200: ok(Issuance, "Oldest bucket first"), **ADMIN, **INVALID},
    )
    def issuance(
        self,
        admin: NamedDependency[Admin],
        reports: NamedDependency[AnalyticsReports],
        runtime: RuntimeDependency,
        granularity: FromQuery[str] = "hour",
        since: RFC3339Query = None,
        until: RFC3339Query = None,
        client_id: FromQuery[str | None] = None,
    ) -> Body:
        default = timedelta(hours=24) if granularity == "hour" else timedelta(days=30)
        start, end = report_window(_time(since), _time(until), default, runtime.clock.now())
        return reports.issuance(granularity, start, end, client_id, by=admin)

    @get(
        "/top-clients",
        sync_to_thread=True,
        summary="The clients that got the most tokens",
        responses={200: ok(TopClients, "Most tokens first"), **ADMIN, **INVALID},
    )
    def top_clients(
        self,
        admin: NamedDependency[Admin],
        reports: NamedDependency[AnalyticsReports],
        runtime: RuntimeDependency,
        since: RFC3339Query = None,
        until: RFC3339Query = None,
        limit: FromQuery[int] = 10,
    ) -> Body:
        start, end = report_window(
            _time(since), _time(until), timedelta(hours=24), runtime.clock.now()
        )
        return reports.top(start, end, limit, by=admin)

    @get(
        "/clients",
        sync_to_thread=True,
        summary="Clients by status, secret age against the rotation policy, dormant clients",
        responses={200: ok(ClientsReport, "The report"), **ADMIN, **INVALID},
    )
    def clients(
        self,
        admin: NamedDependency[Admin],
        reports: NamedDependency[AnalyticsReports],
        runtime: RuntimeDependency,
        rotation_days: FromQuery[int | None] = None,
        dormant_days: FromQuery[int | None] = None,
    ) -> Body:
        settings = runtime.settings
        return reports.clients(
            runtime.clock.now(),
            settings.rotation_policy_days if rotation_days is None else rotation_days,
            settings.dormant_days if dormant_days is None else dormant_days,
            by=admin,
        )
