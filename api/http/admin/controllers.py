"""The admin HTTP API under `/admin`: JSON over the same use cases as the CLI.

Every request needs a bearer access token from this server with scope `keyledger:admin`; the
token's client id is the actor recorded in every event. Writes run in a worker thread (the
event store has no async API) and then fold into this replica's clients model at once, so
the answer, and the next token request here, already see the change.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import Body as BodyParam
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

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
from api.usecases.admin_access import BearerError
from api.usecases.analytics import AnalyticsReports, AnalyticsRequestError
from api.usecases.client_admin import (
    ClientAdmin,
    ClientNotFound,
    VersionMismatch,
    canonical_client_id,
    parse_duration,
)
from api.usecases.projection_rebuild import RebuildRefused, copy_records
from api.usecases.timestamps import parse_rfc3339
from domain.anomaly_detection import RULES
from domain.client import AUTH_METHODS, CLIENT_SECRET_BASIC, PRIVATE_KEY_JWT, Client
from domain.client_settings import DEFAULT_TOKEN_TTL, ClientSettings, InvalidClientSettings

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
            description="an access token from /oauth2/token with scope keyledger:admin",
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


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: a valid admin access token, its claims kept on the request state."""
    runtime = connection.app.state.runtime
    claims = runtime.admin_verifier.verify(connection.headers.get("authorization"))
    connection.state.admin_claims = claims  # the access log's client_id comes from here


def _actor(request: Request[Any, Any, Any]) -> str:
    return str(request.state.admin_claims["client_id"])


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


def _admin(request: Request[Any, Any, Any]) -> ClientAdmin:
    admin: ClientAdmin = request.app.state.runtime.admin
    return admin


def _view(request: Request[Any, Any, Any], client_id: str, version: int = 0) -> Body:
    """The client as this replica sees it after folding the write just made (at `version`).

    Called after a commit, so it must not fail the request: an error would tell the caller
    the command failed when it did not (and hide a new secret). If this replica cannot fold
    the change now, the answer says what was committed and the follower catches up later.
    """
    runtime = request.app.state.runtime
    try:
        runtime.follower.catch_up()
    except Exception:
        log.exception("clients model could not fold the admin write to %s yet", client_id)
    record = runtime.view.get(client_id)
    if record is None or record.version < version:
        return {"client_id": client_id, "version": version, "pending": True}
    view: Body = record.public_view()
    return view


class AdminClientsController(Controller):
    path = "/admin/clients"
    tags = ["admin"]
    guards = [require_admin]
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
    def register(self, request: Request[Any, Any, Any], data: JSONBody[NewClient]) -> Body:
        settings = ClientSettings.create(
            name=data.name,
            allowed_scopes=data.allowed_scopes,
            default_scopes=data.default_scopes,
            token_ttl=data.token_ttl,
            audiences=data.audiences,
            default_audience=data.default_audience,
        )
        method = data.token_endpoint_auth_method
        if method not in AUTH_METHODS:
            raise InvalidClientSettings(
                f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
            )
        if (method == PRIVATE_KEY_JWT) != (data.jwks is not None):
            raise InvalidClientSettings("jwks goes with token_endpoint_auth_method=private_key_jwt")
        if data.jwks is not None:
            client_id = _admin(request).register_with_keys(
                settings, data.jwks, actor=_actor(request), reason=data.reason
            )
            return _view(request, client_id, 1)
        created = _admin(request).register(settings, actor=_actor(request), reason=data.reason)
        return {**_view(request, created.client_id, 1), "client_secret": created.client_secret}

    @get(
        "/",
        sync_to_thread=True,
        summary="List clients, now or from a point-in-time copy",
        responses={200: ok(list[ClientView], "Every client"), **ADMIN, **NOT_FOUND},
    )
    def list_clients(
        self, request: Request[Any, Any, Any], as_of_copy: FromQuery[str | None] = None
    ) -> list[Body]:
        runtime = request.app.state.runtime
        if as_of_copy is None:
            return [r.public_view() for r in runtime.view.all()]
        try:
            copied = copy_records(runtime.ledger, as_of_copy, "clients")
        except RebuildRefused as missing:
            raise ClientNotFound(str(missing)) from None
        return [
            r.public_view() for r in sorted(copied, key=lambda r: (r.registered_at, r.client_id))
        ]

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
        request: Request[Any, Any, Any],
        client_id: FromPath[str],
        at: RFC3339Query = None,
    ) -> Body:
        admin, client_id = _admin(request), canonical_client_id(client_id)
        if at is not None:
            return admin.state_at(client_id, parse_rfc3339(at)).public_view()
        return _view(request, client_id, admin.load(client_id).version)  # 404 when unknown

    @patch(
        "/{client_id:str}",
        sync_to_thread=True,
        summary="Change name, scopes, lifetime, audiences",
        responses={**CHANGED, **TOO_LARGE},
    )
    def update(
        self,
        request: Request[Any, Any, Any],
        client_id: FromPath[str],
        data: JSONBody[ClientChanges],
    ) -> Body:
        actor, reason = _actor(request), data.reason

        def apply(client: Client, now: Any) -> None:
            if data.name is not None:
                client.rename(name=data.name, now=now, actor=actor, reason=reason)
            if data.allowed_scopes is not None or data.default_scopes is not None:
                client.change_scopes(
                    allowed_scopes=(
                        client.allowed_scopes
                        if data.allowed_scopes is None
                        else data.allowed_scopes
                    ),
                    default_scopes=data.default_scopes,
                    now=now,
                    actor=actor,
                    reason=reason,
                )
            if data.token_ttl is not None:
                client.change_token_lifetime(
                    token_ttl=data.token_ttl, now=now, actor=actor, reason=reason
                )
            if data.audiences is not None or data.default_audience is not None:
                client.change_audiences(
                    audiences=client.audiences if data.audiences is None else data.audiences,
                    default_audience=data.default_audience,
                    now=now,
                    actor=actor,
                    reason=reason,
                )
            if data.quotas is not None:
                client.change_quotas(
                    tokens_per_minute=data.quotas.tokens_per_minute,
                    tokens_per_day=data.quotas.tokens_per_day,
                    now=now,
                    actor=actor,
                    reason=reason,
                )

        client_id = canonical_client_id(client_id)
        changed = _admin(request).change(
            client_id, apply, expected_version=_expected_version(request)
        )
        return _view(request, client_id, changed.version)

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
        client_id: FromPath[str],
        data: Annotated[Rotation | None, BodyParam()] = None,
    ) -> Body:
        rotation, client_id = data or Rotation(), canonical_client_id(client_id)
        grace = parse_duration(str(rotation.grace))
        created = _admin(request).rotate_secret(
            client_id,
            grace=grace,
            actor=_actor(request),
            reason=rotation.reason,
            expected_version=_expected_version(request),
        )
        return {
            **_view(request, client_id),
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
        self, request: Request[Any, Any, Any], client_id: FromPath[str], data: JSONBody[NewKeys]
    ) -> Body:
        client_id = canonical_client_id(client_id)
        changed = _admin(request).replace_keys(
            client_id,
            data.jwks,
            actor=_actor(request),
            reason=data.reason,
            expected_version=_expected_version(request),
        )
        return _view(request, client_id, changed.version)

    def _command(
        self,
        request: Request[Any, Any, Any],
        client_id: FromPath[str],
        method: str,
        reason: str | None,
        **kw: Any,
    ) -> Body:
        actor, client_id = _actor(request), canonical_client_id(client_id)
        changed = _admin(request).change(
            client_id,
            lambda c, now: getattr(c, method)(now=now, actor=actor, reason=reason, **kw),
            expected_version=_expected_version(request),
        )
        return _view(request, client_id, changed.version)

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
        client_id: FromPath[str],
        data: Annotated[Reason | None, BodyParam()] = None,
    ) -> Body:
        return self._command(
            request, client_id, "revoke_previous_secret", (data or Reason()).reason
        )

    @post(
        "/{client_id:str}/suspend",
        status_code=200,
        sync_to_thread=True,
        summary="Refuse the client everywhere within 1 s (reason required)",
        responses={**CHANGED, **TOO_LARGE},
    )
    def suspend(
        self, request: Request[Any, Any, Any], client_id: FromPath[str], data: JSONBody[Reason]
    ) -> Body:
        return self._command(request, client_id, "suspend", data.reason)

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
        client_id: FromPath[str],
        data: Annotated[Reason | None, BodyParam()] = None,
    ) -> Body:
        return self._command(request, client_id, "reactivate", (data or Reason()).reason)

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
        client_id: FromPath[str],
        data: Annotated[TokenRevocation | None, BodyParam()] = None,
    ) -> Body:
        revocation = data or TokenRevocation()
        return self._command(
            request,
            client_id,
            "revoke_tokens",
            revocation.reason,
            cutoff=parse_rfc3339(revocation.before) if revocation.before else None,
            secret_generation=revocation.secret_generation,
        )

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
        client_id: FromPath[str],
        reason: Annotated[str | None, Parameter(max_length=MAX_REASON)] = None,
    ) -> Body:
        return self._command(request, client_id, "delete", reason)

    @get(
        "/{client_id:str}/history",
        sync_to_thread=True,
        summary="Every change: when, who, what, why",
        responses={200: ok(list[HistoryEntry], "Oldest first"), **ADMIN, **NOT_FOUND},
    )
    def history(self, request: Request[Any, Any, Any], client_id: FromPath[str]) -> list[Body]:
        return _admin(request).history(client_id)


def bearer_error_response(request: Request[Any, Any, Any], exc: BearerError) -> Response[Any]:
    scope = request.app.state.runtime.admin_verifier.scope
    body = {"error": exc.error or "unauthorized", "error_description": exc.description}
    return Response(
        body, status_code=exc.status_code, headers={"WWW-Authenticate": exc.challenge(scope)}
    )


class AdminTokensController(Controller):
    path = "/admin/tokens"
    tags = ["admin"]
    guards = [require_admin]
    security = SECURITY
    cache_control = NO_STORE  # answers may hold a new secret, and always client state

    @get(
        "/{jti:str}",
        sync_to_thread=True,
        summary="A token's lineage, state and history",
        responses={200: ok(TokenView, "The token"), **ADMIN, **NOT_FOUND},
    )
    def show(self, request: Request[Any, Any, Any], jti: FromPath[str]) -> Body:
        history: Body = request.app.state.runtime.revoker.history(jti)
        return history

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
        request: Request[Any, Any, Any],
        jti: FromPath[str],
        data: Annotated[Reason | None, BodyParam()] = None,
    ) -> Body:
        revoker = request.app.state.runtime.revoker
        revoked = revoker.revoke_jti(jti, actor=_actor(request), reason=(data or Reason()).reason)
        return {**revoker.history(jti), "revoked_now": revoked}


class AdminAlertsController(Controller):
    path = "/admin/alerts"
    tags = ["admin"]
    guards = [require_admin]
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
        request: Request[Any, Any, Any],
        since: RFC3339Query = None,
        rule: FromQuery[str | None] = None,
        limit: FromQuery[int] = 100,
    ) -> Body:
        if rule is not None and rule not in RULES:
            raise InvalidClientSettings(f"unknown rule {rule!r}: one of {', '.join(RULES)}")
        if not 1 <= limit <= 1000:
            raise InvalidClientSettings("limit must be 1 to 1000")
        store = request.app.state.runtime.alerts
        alerts = store.alerts(since=parse_rfc3339(since) if since else None, rule=rule, limit=limit)
        return {"alerts": [a.to_dict() for a in alerts]}


def _window(
    since: str | None, until: str | None, default: timedelta, now: datetime
) -> tuple[datetime, datetime]:
    end = parse_rfc3339(until) if until else now
    try:
        return (parse_rfc3339(since) if since else end - default), end
    except OverflowError:
        raise AnalyticsRequestError("until is too early to count back from") from None


class AdminAnalyticsController(Controller):
    path = "/admin/analytics"
    tags = ["admin"]
    guards = [require_admin]
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
        request: Request[Any, Any, Any],
        granularity: FromQuery[str] = "hour",
        since: RFC3339Query = None,
        until: RFC3339Query = None,
        client_id: FromQuery[str | None] = None,
    ) -> Body:
        runtime = request.app.state.runtime
        default = timedelta(hours=24) if granularity == "hour" else timedelta(days=30)
        start, end = _window(since, until, default, runtime.clock.now())
        return AnalyticsReports(runtime.ledger).issuance(granularity, start, end, client_id)

    @get(
        "/top-clients",
        sync_to_thread=True,
        summary="The clients that got the most tokens",
        responses={200: ok(TopClients, "Most tokens first"), **ADMIN, **INVALID},
    )
    def top_clients(
        self,
        request: Request[Any, Any, Any],
        since: RFC3339Query = None,
        until: RFC3339Query = None,
        limit: FromQuery[int] = 10,
    ) -> Body:
        runtime = request.app.state.runtime
        start, end = _window(since, until, timedelta(hours=24), runtime.clock.now())
        return AnalyticsReports(runtime.ledger).top(start, end, limit)

    @get(
        "/clients",
        sync_to_thread=True,
        summary="Clients by status, secret age against the rotation policy, dormant clients",
        responses={200: ok(ClientsReport, "The report"), **ADMIN, **INVALID},
    )
    def clients(
        self,
        request: Request[Any, Any, Any],
        rotation_days: FromQuery[int | None] = None,
        dormant_days: FromQuery[int | None] = None,
    ) -> Body:
        runtime = request.app.state.runtime
        settings = runtime.settings
        return AnalyticsReports(runtime.ledger).clients(
            runtime.clock.now(),
            settings.rotation_policy_days if rotation_days is None else rotation_days,
            settings.dormant_days if dormant_days is None else dormant_days,
        )
