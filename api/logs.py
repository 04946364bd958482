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

import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

from domain.redaction import SECRET_PREFIX, redact


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
REQUEST_ID_VAR: ContextVar[str | None] = ContextVar("keyledger_request_id", default=None)
CLIENT_ID_VAR: ContextVar[str | None] = ContextVar("keyledger_client_id", default=None)


def _request_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the current request's id and client id, when there are."""
    request_id = REQUEST_ID_VAR.get()
    if request_id is not None:
        event["request_id"] = request_id
        client_id = CLIENT_ID_VAR.get()
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
    CLIENT_ID_VAR.set(redact(client_id))
