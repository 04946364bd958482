"""The outermost ASGI layer: request ids, the access log and the latency histogram."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.metrics import REQUEST_SECONDS, RESPONSES, status_class
from api.logs import CLIENT_ID_VAR, REQUEST_ID_VAR, bind_client
from domain.admin_scopes import Admin
from domain.redaction import SECRET_PREFIX

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access = structlog.stdlib.get_logger("keyledger.access")


class RequestInstrumentation:
    """The outermost ASGI layer (around Litestar's own handler, not a per-route middleware):
    a request id per request, in every line logged for it and in `X-Request-Id`; with
    `access_log`, one line per request; the request-latency histogram (route template,
    method, status class) and the response counter (exact status code). Kept cheap: it runs
    for every token request."""

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log
        self._prefix = secrets.token_hex(4)  # ids unique across processes and replicas
        self._count = itertools.count(1)
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = self._request_id(scope)
        request_token = REQUEST_ID_VAR.set(request_id)
        client_token = CLIENT_ID_VAR.set(None)
        status = 500
        started = time.perf_counter()
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            method = scope.get("method", "")
            series = self._series.get((route, method, status))
            if series is None:  # one child each per route, method and status, looked up once
                series = self._series[(route, method, status)] = (
                    REQUEST_SECONDS.labels(route, method, status_class(status)),
                    RESPONSES.labels(route, method, str(status)),
                )
            series[0].observe(elapsed)
            series[1].inc()
            if self.access_log and _access_enabled():
                admin = scope.get("state", {}).get("admin")  # set by the admin guard
                if isinstance(admin, Admin):
                    bind_client(admin.actor)
                access.info(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            CLIENT_ID_VAR.reset(client_token)
            REQUEST_ID_VAR.reset(request_token)

    def _request_id(self, scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                offered = value.decode("latin-1")
                if REQUEST_ID.fullmatch(offered) and SECRET_PREFIX not in offered:
                    return offered
                break
        return f"{self._prefix}-{next(self._count):x}"


def _access_enabled() -> bool:
    return logging.getLogger("keyledger.access").isEnabledFor(logging.INFO)
