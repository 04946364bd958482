"""A span per HTTP request, continuing the caller's W3C trace (only with tracing on)."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.tracing import OpenTelemetryTracing
from api.http.client_address import client_address


class RequestTracing:
    """The outermost ASGI layer when `KEYLEDGER_TRACING` is on (with tracing off the app is
    not wrapped at all): a SERVER span per request, named `METHOD /route/template`, a child
    of the caller's span when it sends `traceparent`; the use cases' spans nest inside it.
    Attributes follow OpenTelemetry's HTTP conventions; a 5xx marks the span as an error."""

    def __init__(self, app: ASGIApp, tracing: OpenTelemetryTracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "")
        attributes = {
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http"),
            "client.address": client_address(scope) or "",
        }
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracing.server_span(method, scope["headers"], attributes) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = scope.get("path_template")
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    self.tracing.failed(span, str(status))
