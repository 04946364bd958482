"""Structured logs: one JSON object per line (structlog), with the request id and, where known,
the client id of the request a line belongs to.

Every logger (keyledger's, uvicorn's, libraries') goes through one handler whose formatter
renders JSON, so there is one format to parse. The request middleware binds `request_id`
(the caller's `X-Request-Id` when it is a plain token of at most 64 characters, else a new
one; echoed in the response) in a context variable that every line logged while handling
the request carries; handlers bind `client_id` once the client is known and registered.
Secrets, their hashes and tokens are never logged: no code path passes them to a logger, and
an end-to-end test reads every line of a run for them. What a caller typed may still reach a
line (a library's message, a client id that was really a secret), so every line has anything
shaped like a secret (`kl_secret_...`) redacted before it is rendered.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import sys
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.metrics import REQUEST_SECONDS
from domain.redaction import SECRET_PREFIX, redact

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access = structlog.stdlib.get_logger("keyledger.access")


def configure_logging(level: str, json_lines: bool = True) -> None:
    """Route every stdlib logger through structlog's formatter: JSON lines (or, for a
    terminal, structlog's console renderer)."""
    shared: list[Any] = [
        _request_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # keyledger.access says more, once
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


# Plain context variables (one `set` each per request) rather than structlog's bound
# contextvars, which cost several microseconds on every token request.
_REQUEST_ID: ContextVar[str | None] = ContextVar("keyledger_request_id", default=None)
_CLIENT_ID: ContextVar[str | None] = ContextVar("keyledger_client_id", default=None)


def _request_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the current request's id and client id, when there are."""
    request_id = _REQUEST_ID.get()
    if request_id is not None:
        event["request_id"] = request_id
        client_id = _CLIENT_ID.get()
        if client_id is not None:
            event["client_id"] = client_id
    return event


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: secret-shaped text in any value (and in exceptions) redacted."""
    for name, value in event.items():
        if isinstance(value, str):
            if SECRET_PREFIX in value:
                event[name] = redact(value)
        elif (
            value is not None
            and not isinstance(value, int | float)
            and SECRET_PREFIX in (text := str(value))
        ):
            event[name] = redact(text)
    return event


def bind_client(client_id: str) -> None:
    """Say which (registered) client the current request is about, in its log lines."""
    _CLIENT_ID.set(redact(client_id))


class Observed:
    """The outermost ASGI layer (around Litestar's own handler, not a per-route middleware):
    a request id per request, in every line logged for it and in `X-Request-Id`; with
    `access_log`, one line per request; and the request-latency histogram. Kept cheap: it
    runs for every token request."""

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log
        self._prefix = secrets.token_hex(4)  # ids unique across processes and replicas
        self._count = itertools.count(1)
        self._histograms: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = self._request_id(scope)
        request_token = _REQUEST_ID.set(request_id)
        client_token = _CLIENT_ID.set(None)
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
            histogram = self._histograms.get((route, method))
            if histogram is None:  # one child per route and method, looked up once
                histogram = self._histograms[(route, method)] = REQUEST_SECONDS.labels(
                    route, method
                )
            histogram.observe(elapsed)
            if self.access_log and _access_enabled():
                claims = scope.get("state", {}).get("admin_claims")  # set by the admin guard
                if claims:
                    bind_client(str(claims["client_id"]))
                access.info(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            _CLIENT_ID.reset(client_token)
            _REQUEST_ID.reset(request_token)

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
