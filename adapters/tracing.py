"""Tracing with OpenTelemetry, off by default (`KEYLEDGER_TRACING=otlp` turns it on).

Off, every span is one shared do-nothing object and OpenTelemetry is never imported: the
token endpoint pays an attribute lookup and two method calls per span. On, spans go through
the SDK's batch processor to an OTLP/HTTP collector; W3C `traceparent`/`tracestate` carry
the context in (HTTP requests) and out (the audit topic's Kafka headers).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from importlib import metadata
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

AttributeValue = str | int | float | bool
SpanKindName = Literal["internal", "server", "producer"]
TRACING_CHOICES = ("off", "otlp")


class NoSpan:
    """The span of tracing off: records nothing, costs nothing."""

    __slots__ = ()

    def is_recording(self) -> bool:
        return False

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass

    def __enter__(self) -> NoSpan:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


NO_SPAN = NoSpan()


class NoTracing:
    """Tracing off."""

    enabled = False

    def span(self, name: str, kind: SpanKindName = "internal") -> NoSpan:
        return NO_SPAN

    def shutdown(self) -> None:
        pass


@dataclass(frozen=True)
class Delivery:
    """A message's producer span, begun, and the headers that carry its context."""

    span: Any
    headers: list[tuple[str, bytes]]

    def end(self, error: BaseException | None = None) -> None:
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            self.span.record_exception(error)
            self.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        self.span.end()


class OpenTelemetryTracing:
    """Spans through an OpenTelemetry SDK `TracerProvider` of this process's own (never the
    global one, so tests and embedders each keep theirs)."""

    enabled = True

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace = trace
        self._provider = provider
        self._tracer = provider.get_tracer("keyledger", _version())
        self._propagator = TraceContextTextMapPropagator()
        self._kinds = {
            "internal": trace.SpanKind.INTERNAL,
            "server": trace.SpanKind.SERVER,
            "producer": trace.SpanKind.PRODUCER,
        }

    def span(self, name: str, kind: SpanKindName = "internal") -> AbstractContextManager[Any]:
        """A child of the current span (or a new trace), current while it is open."""
        return self._tracer.start_as_current_span(name, kind=self._kinds[kind])

    @contextmanager
    def server_span(
        self, method: str, headers: Iterable[tuple[bytes, bytes]], attributes: Mapping[str, Any]
    ) -> Iterator[Any]:
        """An HTTP request's span, continuing the caller's trace when it sends a valid W3C
        `traceparent` (a malformed one starts a new trace, as the spec asks)."""
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers
            if name in (b"traceparent", b"tracestate")
        }
        context = self._propagator.extract(carrier) if carrier else None
        with self._tracer.start_as_current_span(
            method,
            context=context,
            kind=self._trace.SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,  # the app answers every error; the status says which
            set_status_on_exception=False,
        ) as span:
            yield span

    def failed(self, span: Any, description: str) -> None:
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, description))

    def begin_delivery(self, name: str, attributes: Mapping[str, AttributeValue]) -> Delivery:
        """A producer span for one message, a child of the current span, ended by the
        caller once the broker has acknowledged the message; its `traceparent` header lets
        a consumer continue the trace."""
        span = self._tracer.start_span(
            name, kind=self._trace.SpanKind.PRODUCER, attributes=dict(attributes)
        )
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=self._trace.set_span_in_context(span))
        return Delivery(span, [(k, v.encode()) for k, v in carrier.items()])

    def force_flush(self) -> bool:
        return bool(self._provider.force_flush())

    def shutdown(self) -> None:
        """Export what is buffered (bounded by the exporter's timeout), then stop."""
        self._provider.shutdown()


Tracing = NoTracing | OpenTelemetryTracing


def _version() -> str:
    try:
        return metadata.version("keyledger")
    except metadata.PackageNotFoundError:
        return "unknown"


def otlp_headers(text: str | None) -> dict[str, str] | None:
    """`name=value,name=value` (values URL-encoded, as OTEL_EXPORTER_OTLP_HEADERS)."""
    if not text:
        return None
    from urllib.parse import unquote

    headers: dict[str, str] = {}
    for item in text.split(","):
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise ValueError("expected name=value pairs separated by commas")
        headers[name.strip().lower()] = unquote(value.strip())
    return headers


def provider_with(
    processors: Sequence[SpanProcessor], process: str, sample_ratio: float = 1.0
) -> TracerProvider:
    """A provider for this process: `service.name` keyledger (or OTEL_SERVICE_NAME), its
    version and role, OTEL_RESOURCE_ATTRIBUTES merged; a parent's sampling decision is
    kept, new traces are sampled at `sample_ratio`."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or "keyledger",
            "service.version": _version(),
            "keyledger.process": process,
        }
    )
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
        resource=resource,
        shutdown_on_exit=False,  # Runtime.stop and the commands shut it down, bounded
    )
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def otlp_tracing(
    process: str,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    sample_ratio: float,
) -> OpenTelemetryTracing:
    """Spans batched to an OTLP/HTTP collector (protobuf); `endpoint` None: the SDK's own
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4318."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=5)
    processor = BatchSpanProcessor(exporter, export_timeout_millis=5000)
    return OpenTelemetryTracing(provider_with([processor], process, sample_ratio))
