"""`GET /admin/dashboard`: charts of token issuance, top clients, alerts and secret age.

Plain server-rendered HTML. The data is embedded in the page as JSON; Chart.js (vendored
under `api/http/admin/static`, MIT) and the page's script are served by keyledger itself, so
the page needs no CDN, and its Content-Security-Policy allows scripts from this origin only.

Access: an admin access token, as `Authorization: Bearer ...` or from the login form. The
form takes admin client credentials (or a token), gets a token the way the token endpoint
would (the same checks, throttle and security observations; the token is a recorded
`Issued` event), and keeps it in an HttpOnly, SameSite=Strict cookie scoped to the dashboard.
"""

from __future__ import annotations

import asyncio
import html
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from api.http.admin.openapi import ErrorBody
from api.http.client_address import client_address
from api.http.oauth2.security_observations import Observing
from api.http.runtime import runtime_of
from api.usecases.admin_access import BearerError
from api.usecases.analytics import AnalyticsReports
from api.usecases.credentials import Credentials
from api.usecases.issuance import SessionExpired
from domain.admin_scopes import ADMIN_SCOPES, FULL, Admin
from domain.client_record import ClientRecord
from domain.oauth_errors import OAuthError

STATIC = Path(__file__).parent / "static"
CHART_JS = "chart-4.6.1.umd.min.js"
COOKIE = "kl_dashboard"
PATH = "/admin/dashboard"
TOP = 8
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "X-Frame-Options": "DENY"}

# The sign-in page answers every refusal, as HTML: 401, or 429 when throttled.
_SIGN_IN = ResponseSpec(
    str, description="The sign-in page", media_type=MediaType.HTML, generate_examples=False
)
_THROTTLED = ResponseSpec(
    str,
    description="The sign-in page: too many attempts",
    media_type=MediaType.HTML,
    generate_examples=False,
)
_REDIRECT = ResponseSpec(None, description="To the dashboard (Location)")
_MALFORMED = ResponseSpec(
    ErrorBody, description="invalid_request: the form cannot be read", generate_examples=False
)

static_files = create_static_files_router(
    path=f"{PATH}/static", directories=[STATIC], include_in_schema=False
)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><link rel='icon' href='data:,'>"
        f"<link rel='stylesheet' href='{PATH}/static/dashboard.css'></head>"
        f"<body>{body}</body></html>"
    )


def login_page(error: str | None = None, status: int = 401) -> Response[str]:
    message = f"<p class='error'>{html.escape(error)}</p>" if error else ""
    form = (
        "<div class='login'><h1>keyledger dashboard</h1>"
        "<p class='hint'>Sign in with an admin client (a keyledger:admin scope), or paste an "
        "admin access token.</p>"
        f"{message}<form method='post' action='{PATH}/login'>"
        "<label>client id<input name='client_id' autocomplete='username'></label>"
        "<label>client secret<input name='client_secret' type='password' "
        "autocomplete='current-password'></label>"
        "<label>or an access token<input name='token' type='password'></label>"
        "<button type='submit'>Sign in</button></form></div>"
    )
    headers = HEADERS | {"WWW-Authenticate": 'Bearer realm="keyledger"'}
    return Response(
        _page("keyledger: sign in", form),
        status_code=status,
        media_type="text/html",
        headers=headers,
    )


def admin_scopes_of(client: ClientRecord | None) -> str:
    """The admin scopes a sign-in asks for: every one the client holds (none: the token
    request is refused as `invalid_scope`, without saying whether the client exists)."""
    held = [] if client is None else [s for s in ADMIN_SCOPES if s in client.allowed_scopes]
    return " ".join(held) or FULL


def _label(client_id: str, name: str | None) -> str:
    return f"{name or '?'} ({client_id[:8]})"


def dashboard_data(
    reports: AnalyticsReports,
    alerts: list[Any],
    now: datetime,
    rotation_days: int,
    dormant_days: int,
    *,
    by: Admin,
) -> dict[str, Any]:
    """What the charts draw: the last 24 hours by hour, top clients, alerts, secret ages."""
    since = now - timedelta(hours=23)
    hours = [(since + timedelta(hours=i)).strftime("%Y-%m-%dT%H") for i in range(24)]
    buckets = reports.issuance("hour", since, now, by=by)["buckets"]
    top = reports.top(since, now, TOP, by=by)["clients"]
    leaders = [c["client_id"] for c in top]
    series: dict[str, list[int]] = {cid: [0] * 24 for cid in leaders}
    other = [0] * 24
    for b in buckets:
        if b["bucket"] not in hours:
            continue
        slot = hours.index(b["bucket"])
        series.get(b["client_id"], other)[slot] += b["issued"]
    names = {c["client_id"]: c["client_name"] for c in top}
    issuance = [{"label": _label(cid, names.get(cid)), "counts": series[cid]} for cid in leaders]
    if any(other):
        issuance.append({"label": "other clients", "counts": other})
    by_severity: dict[str, list[int]] = {}
    for alert in alerts:
        label = alert.last_seen.strftime("%Y-%m-%dT%H")
        if label in hours:
            by_severity.setdefault(alert.severity, [0] * 24)[hours.index(label)] += 1
    clients = reports.clients(now, rotation_days, dormant_days, by=by)
    return {
        "hours": hours,
        "issuance": issuance,
        "top": [
            {"label": _label(c["client_id"], c["client_name"]), "issued": c["issued"]} for c in top
        ],
        "alerts": [{"severity": s, "counts": c} for s, c in sorted(by_severity.items())],
        "secrets": [
            {
                "label": _label(c["client_id"], c["name"]),
                "age_days": c["secret_age_days"],
                "rotation_due": c["rotation_due"],
            }
            for c in clients["clients"]
        ],
        "rotation_days": rotation_days,
        "by_status": clients["by_status"],
        "dormant": sum(1 for c in clients["clients"] if c["dormant"]),
        "rotation_due": sum(1 for c in clients["clients"] if c["rotation_due"]),
    }


def _embed(data: dict[str, Any]) -> str:
    """JSON that cannot end its <script> element early, whatever names clients have."""
    text = json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"<script id='dashboard-data' type='application/json'>{text}</script>"


def _charts_page(data: dict[str, Any], admin: str) -> str:
    status = ", ".join(f"{html.escape(k)}: {v}" for k, v in data["by_status"].items())
    sections = "".join(
        f"<section><h2>{title}</h2><div class='chart'><canvas id='{cid}'></canvas></div></section>"
        for cid, title in (
            ("issuance", "Tokens issued per hour, last 24 h, per client"),
            ("top-clients", "Top clients, last 24 h"),
            ("alerts", "Alerts per hour, last 24 h"),
            ("secret-age", "Secret age per client (days)"),
        )
    )
    body = (
        f"<header><h1>keyledger</h1><form method='post' action='{PATH}/logout'>"
        f"<span>{html.escape(admin)}</span> <button type='submit'>Sign out</button></form></header>"
        f"<p class='summary'><span>clients: {status}</span>"
        f"<span>rotation due: {data['rotation_due']}</span>"
        f"<span>dormant: {data['dormant']}</span></p>"
        f"<main>{sections}</main>{_embed(data)}"
        f"<script src='{PATH}/static/{CHART_JS}'></script>"
        f"<script src='{PATH}/static/dashboard.js'></script>"
    )
    return _page("keyledger dashboard", body)


def _authorization(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization")
    if header:
        return header
    cookie = request.cookies.get(COOKIE)
    return f"Bearer {cookie}" if cookie else None


@get(
    PATH,
    sync_to_thread=True,
    media_type=MediaType.HTML,
    tags=["dashboard"],
    summary="Charts of issuance, top clients, alerts and secret age (HTML)",
    description="An admin token as Authorization: Bearer, or the cookie the sign-in sets.",
    responses={401: _SIGN_IN},
)
def dashboard(request: Request[Any, Any, Any]) -> Response[str]:
    runtime = runtime_of(request.app.state)
    authorization = _authorization(request)
    if authorization is None:
        return login_page()
    try:
        admin = runtime.admin_verifier.verify(authorization)
    except BearerError as refused:
        return login_page(f"Sign in again ({refused.description}).")
    settings, now = runtime.settings, runtime.clock.now()
    data = dashboard_data(
        runtime.reports,
        runtime.alert_queries.recent(by=admin, since=now - timedelta(hours=24), limit=1000),
        now,
        settings.rotation_policy_days,
        settings.dormant_days,
        by=admin,
    )
    page = _charts_page(data, f"admin {admin.actor}")
    return Response(page, media_type="text/html", headers=HEADERS)


@post(
    f"{PATH}/login",
    status_code=303,
    tags=["dashboard"],
    summary="Sign in with admin client credentials or an admin token; sets the cookie",
    responses={303: _REDIRECT, 400: _MALFORMED, 401: _SIGN_IN, 429: _THROTTLED},
)
async def login(
    request: Request[Any, Any, Any],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    runtime = runtime_of(request.app.state)
    if _cross_site(request):
        return login_page("Sign in from this server's own page.", status=403)
    token, lifetime = (data.get("token") or "").strip(), 0
    if not token:
        client_id, secret = (data.get("client_id") or "").strip(), data.get("client_secret") or ""
        if not client_id or not secret:
            return login_page("Give a client id and secret, or a token.")
        source_ip = client_address(request.scope)
        try:
            with Observing(request.scope, f"{PATH}/login") as seen:
                seen.credentials = Credentials(client_id, secret, "client_secret_post")
                issued = await runtime.issuer.sign_in(
                    seen.credentials,
                    admin_scopes_of(runtime.view.get(client_id)),
                    source_ip,
                )
        except OAuthError as refused:
            if refused.error == "too_many_requests":
                return login_page("Too many attempts; try again later.", status=429)
            return login_page("Those are not the credentials of an admin client.")
        token, lifetime = issued.access_token, issued.expires_in
    try:
        pasted = runtime.admin_verifier.active(f"Bearer {token}")
    except BearerError:
        return login_page("That token is not a valid admin token.")
    # A pasted token keeps its own expiry (and, not being a sign-in, is never renewed).
    lifetime = lifetime or max(int(pasted.claims["exp"] - runtime.clock.now().timestamp()), 1)
    redirect = Redirect(PATH, status_code=303, headers={"Cache-Control": "no-store"})
    _set_session(redirect, runtime.settings.issuer_url, token, lifetime)
    return redirect


@post(
    f"{PATH}/session",
    status_code=200,
    tags=["dashboard"],
    summary="Keep a signed-in dashboard alive: a fresh cookie while the client stays allowed",
    description=(
        "The page calls this every minute. Past half its lifetime, the session's token is "
        "replaced by a new one for the scopes its client still holds (recorded as a token "
        "with auth_method session_renewal); a revoked token, a suspended client or a session "
        "older than 12 hours gets 401 and the page asks to sign in again."
    ),
    responses={401: ResponseSpec(ErrorBody, description="Sign in again")},
)
async def keep_session(request: Request[Any, Any, Any]) -> Response[Any]:
    runtime = runtime_of(request.app.state)
    cookie = request.cookies.get(COOKIE)
    try:
        session = runtime.admin_verifier.active(f"Bearer {cookie}" if cookie else None)
    except BearerError as refused:
        return _sign_in_again(refused.description)
    remaining = int(session.claims["exp"]) - runtime.clock.now().timestamp()
    lifetime = int(session.claims["exp"]) - int(session.claims["iat"])
    body = {"renewed": False, "expires_in": max(int(remaining), 0)}
    if remaining > lifetime / 2:
        return Response(body, headers={"Cache-Control": "no-store"})
    try:
        renewed = await runtime.issuer.renew_session(session, client_address(request.scope))
    except SessionExpired as expired:
        return _sign_in_again(str(expired))
    # One session, one live token: the one replaced is revoked, so a copy of it cannot
    # branch into a second session.
    await asyncio.to_thread(
        runtime.revoker.retire_replaced, str(session.claims["jti"]), admin=session.client.client_id
    )
    response = Response(
        {"renewed": True, "expires_in": renewed.expires_in}, headers={"Cache-Control": "no-store"}
    )
    _set_session(response, runtime.settings.issuer_url, renewed.access_token, renewed.expires_in)
    return response


def _cross_site(request: Request[Any, Any, Any]) -> bool:
    """A form posted from another site (login CSRF): refused by the browser's own headers,
    `Sec-Fetch-Site` or, from older browsers, an `Origin` that is not this server's."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    own = runtime_of(request.app.state).settings.issuer_url
    return origin.rstrip("/") != _origin_of(own) and origin.rstrip("/") != _origin_of(
        str(request.base_url)
    )


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _sign_in_again(description: str) -> Response[Any]:
    response: Response[Any] = Response(
        {"error": "invalid_token", "error_description": description},
        status_code=401,
        headers={"Cache-Control": "no-store"},
    )
    response.delete_cookie(COOKIE, path=PATH)
    return response


def _set_session(response: Response[Any], issuer_url: str, token: str, lifetime: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=lifetime,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=issuer_url.startswith("https://"),
    )


@post(
    f"{PATH}/logout",
    status_code=303,
    tags=["dashboard"],
    summary="Sign out: drop the cookie",
    responses={303: _REDIRECT},
)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    if _cross_site(request):
        return login_page("Sign out from this server's own page.", status=403)
    redirect = Redirect(PATH, status_code=303)
    redirect.delete_cookie(COOKIE, path=PATH)
    return redirect
