"""OpenTelemetry tracing of the token endpoint and the audit relay, with the SDK's in-memory
exporter (KEYLEDGER_TRACING=otlp end to end: tests/e2e/test_tracing_export.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from adapters.kafka import EmbeddedBroker
from adapters.tracing import NoTracing, OpenTelemetryTracing, provider_with
from api.http.ops.request_tracing import RequestTracing
from api.settings import Settings
from projections.audit_format import audit_event_id
from tests.integration.helpers import FORM, basic, register, running
from tests.integration.test_audit_relay import until
from tests.kafka import consume

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
GUESS = "a-guessed-secret-7f1b"
STEPS = ["keyledger.authenticate", "keyledger.grant", "keyledger.sign", "keyledger.commit_wait"]


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exported: InMemorySpanExporter) -> Iterator[OpenTelemetryTracing]:
    traced = OpenTelemetryTracing(provider_with([SimpleSpanProcessor(exported)], "test"))
    yield traced
    traced.shutdown()


def named(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.name == name]
    return span


def hex_id(number: int, digits: int) -> str:
    return format(number, f"0{digits}x")


async def test_a_token_request_continues_the_callers_trace_with_a_span_per_step(
    settings: Settings, tracing: OpenTelemetryTracing, exported: InMemorySpanExporter
) -> None:
    async with running(settings, tracing=tracing) as (http, runtime):
        creds = await register(runtime)
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers={
                **basic(creds.client_id, creds.client_secret),
                **FORM,
                "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
            },
        )
        assert response.status_code == 200, response.text
    spans = exported.get_finished_spans()
    request = named(spans, "POST /oauth2/token")
    assert request.kind == SpanKind.SERVER
    assert hex_id(request.context.trace_id, 32) == TRACE_ID
    assert request.parent is not None
    assert hex_id(request.parent.span_id, 16) == CALLER_SPAN
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/oauth2/token"
    assert request.attributes["http.response.status_code"] == 200
    for step in STEPS:
        span = named(spans, step)
        assert span.parent is not None
        assert span.parent.span_id == request.context.span_id, step
    assert named(spans, "keyledger.authenticate").attributes == {
        "keyledger.auth_method": "client_secret_basic",
        "oauth.client_id": creds.client_id,
    }


async def test_the_commit_wait_names_the_event_the_relay_will_publish(
    settings: Settings, tracing: OpenTelemetryTracing, exported: InMemorySpanExporter
) -> None:
    async with running(settings, tracing=tracing) as (http, runtime):
        creds = await register(runtime)
        before = runtime.ledger.head()
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers={**basic(creds.client_id, creds.client_secret), **FORM},
        )
        assert response.status_code == 200, response.text
        [stored] = runtime.ledger.read(before, 10)
        expected = audit_event_id(runtime.ledger.mapper.to_domain_event(stored))
    commit = named(exported.get_finished_spans(), "keyledger.commit_wait")
    assert commit.attributes == {"cloudevents.event_id": expected}


async def test_without_a_traceparent_the_request_starts_a_trace(
    settings: Settings, tracing: OpenTelemetryTracing, exported: InMemorySpanExporter
) -> None:
    async with running(settings, tracing=tracing) as (http, _):
        await http.get("/oauth2/jwks")
    request = named(exported.get_finished_spans(), "GET /oauth2/jwks")
    assert request.parent is None


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # an all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # an all-zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is invalid
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # one digit short
        "not a traceparent",
    ],
)
async def test_an_invalid_traceparent_starts_a_new_trace_and_is_otherwise_ignored(
    settings: Settings,
    tracing: OpenTelemetryTracing,
    exported: InMemorySpanExporter,
    traceparent: str,
) -> None:
    async with running(settings, tracing=tracing) as (http, _):
        response = await http.get("/oauth2/jwks", headers={"traceparent": traceparent})
        assert response.status_code == 200
    request = named(exported.get_finished_spans(), "GET /oauth2/jwks")
    assert request.parent is None
    assert hex_id(request.context.trace_id, 32) != TRACE_ID


async def test_a_refused_client_is_an_error_in_authentication_not_in_the_server(
    settings: Settings, tracing: OpenTelemetryTracing, exported: InMemorySpanExporter
) -> None:
    async with running(settings, tracing=tracing) as (http, runtime):
        creds = await register(runtime)
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers={**basic(creds.client_id, GUESS), **FORM},
        )
        assert response.status_code == 401
    spans = exported.get_finished_spans()
    authenticate = named(spans, "keyledger.authenticate")
    assert authenticate.status.status_code == StatusCode.ERROR
    assert [e.name for e in authenticate.events] == ["exception"]
    assert GUESS not in str(authenticate.events[0].attributes)
    request = named(spans, "POST /oauth2/token")
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 401
    assert request.status.status_code == StatusCode.UNSET  # 4xx: the client's error
    assert not [s for s in spans if s.name in ("keyledger.sign", "keyledger.commit_wait")]


async def test_tracing_is_off_unless_configured(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        assert isinstance(runtime.tracing, NoTracing)
        assert not isinstance(http.app.asgi_handler, RequestTracing)


async def test_the_relay_publishes_each_event_in_a_producer_span_whose_context_rides_along(
    kafka_settings: Settings,
    broker: EmbeddedBroker,
    tracing: OpenTelemetryTracing,
    exported: InMemorySpanExporter,
) -> None:
    settings = replace(kafka_settings, follow_interval=0.05)
    async with running(settings, tracing=tracing) as (http, runtime):
        creds = await register(runtime)
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers={**basic(creds.client_id, creds.client_secret), **FORM},
        )
        assert response.status_code == 200, response.text
        event = named(exported.get_finished_spans(), "keyledger.commit_wait").attributes
        assert event is not None
        records = await consume(
            broker.bootstrap,
            settings.audit_topic,
            lambda found: any(r.message["id"] == event["cloudevents.event_id"] for r in found),
        )
        [record] = [r for r in records if r.message["id"] == event["cloudevents.event_id"]]

        def publishes() -> list[ReadableSpan]:  # a span ends once the broker acknowledged
            return [
                s
                for s in exported.get_finished_spans()
                if s.name == f"publish {settings.audit_topic}"
                and s.attributes is not None
                and s.attributes["cloudevents.event_id"] == event["cloudevents.event_id"]
            ]

        await until(publishes)
    version, trace_id, span_id, flags = record.headers["traceparent"].decode().split("-")
    assert version == "00"
    assert int(flags, 16) & 1, "sampled"
    [publish] = [
        p
        for p in publishes()
        if (hex_id(p.context.trace_id, 32), hex_id(p.context.span_id, 16)) == (trace_id, span_id)
    ]
    assert publish.kind == SpanKind.PRODUCER
    assert publish.attributes is not None
    assert publish.attributes["messaging.destination.name"] == settings.audit_topic
    assert publish.attributes["messaging.kafka.message.key"] == creds.client_id
    assert publish.attributes["cloudevents.event_type"] == record.type
    assert publish.parent is not None
    batches = {
        s.context.span_id: s
        for s in exported.get_finished_spans()
        if s.name == "keyledger.relay.publish_batch"
    }
    assert publish.parent.span_id in batches
