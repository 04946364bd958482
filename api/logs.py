"""Structured logs: one JSON object per line (structlog), with the request id and, where known,
the client id of the request a line belongs to.

Every logger (keyledger's, uvicorn's, libraries') goes through one handler whose formatter
renders JSON, so there is one format to parse. The request middleware binds `request_id`
(the caller's `X-Request-Id` when it is a plain token of at most 64 characters, else a new
one; echoed in the response) in a context variable that every line logged while handling
the request carries; handlers bind `client_id` once the client is known and registered.
Secrets, their hashes and tokens are never logged: no code path passes them to a logger, and
an end-to-end test reads every line of a run for them.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import MiddlewareProtocol
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access = structlog.stdlib.get_logger("keyledger.access")


def configure_logging(level: str, json_lines: bool = True) -> None:
    """Route every stdlib logger through structlog's formatter: JSON lines (or, for a
    terminal, structlog's console renderer)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
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


def bind_client(client_id: str) -> None:
    """Say which (registered) client the current request is about, in its log lines."""
    structlog.contextvars.bind_contextvars(client_id=client_id)


class RequestLogging(MiddlewareProtocol):
    """A request id per request, in every line logged for it and in `X-Request-Id`; with
    `access_log`, one line per request (method, route, status, milliseconds)."""

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        offered = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        text = offered.decode("latin-1")
        request_id = text if REQUEST_ID.fullmatch(text) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            claims = scope.get("state", {}).get("admin_claims")  # set by the admin guard
            if claims:
                bind_client(str(claims["client_id"]))
            if self.access_log:
                access.info(
                    "request",
                    method=scope.get("method", ""),
                    route=scope.get("path_template") or "unmatched",
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.clear_contextvars()
