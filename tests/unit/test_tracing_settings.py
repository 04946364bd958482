"""The tracing settings: off by default (OpenTelemetry not even imported), OTLP from settings,
every bad value refused naming the variable, the collector's headers in no message or repr."""

from __future__ import annotations

import subprocess
import sys

import pytest

from adapters.tracing import NoTracing, OpenTelemetryTracing, otlp_headers
from api.bootstrap import tracing_for
from api.settings import Settings, SettingsError

TOKEN = "collector-token-41d9"


def from_env(**variables: str) -> Settings:
    return Settings.from_env({f"KEYLEDGER_{name.upper()}": v for name, v in variables.items()})


def test_tracing_is_off_by_default() -> None:
    assert isinstance(tracing_for(Settings(), "serve"), NoTracing)


def test_with_tracing_off_the_server_never_imports_opentelemetry() -> None:
    probe = (
        "import sys; from api.http.app import create_app; from api.bootstrap import tracing_for; "
        "from api.settings import Settings; tracing_for(Settings(), 'serve'); "
        "print([m for m in sys.modules if m.startswith('opentelemetry')])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_otlp_turns_it_on_with_the_process_named_in_the_resource() -> None:
    tracing = tracing_for(
        from_env(tracing="otlp", otlp_endpoint="http://127.0.0.1:1/v1/traces"), "relay"
    )
    try:
        assert isinstance(tracing, OpenTelemetryTracing)
        assert tracing._provider.resource.attributes["keyledger.process"] == "relay"
        assert tracing._provider.resource.attributes["service.name"] == "keyledger"
    finally:
        tracing.shutdown()


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"tracing": "jaeger"}, "KEYLEDGER_TRACING"),
        ({"tracing": "otlp", "trace_sample_ratio": "1.5"}, "KEYLEDGER_TRACE_SAMPLE_RATIO"),
        ({"tracing": "otlp", "trace_sample_ratio": "-0.1"}, "KEYLEDGER_TRACE_SAMPLE_RATIO"),
        ({"tracing": "otlp", "otlp_endpoint": "collector:4318"}, "KEYLEDGER_OTLP_ENDPOINT"),
        ({"tracing": "otlp", "otlp_headers": f"Bearer {TOKEN}"}, "KEYLEDGER_OTLP_HEADERS"),
        ({"tracing": "otlp", "otlp_headers": f"={TOKEN}"}, "KEYLEDGER_OTLP_HEADERS"),
    ],
)
def test_a_bad_tracing_setting_is_refused_naming_the_variable(
    variables: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named) as refused:
        from_env(**variables)
    assert TOKEN not in str(refused.value)


def test_the_collector_headers_are_in_no_repr() -> None:
    settings = from_env(tracing="otlp", otlp_headers=f"authorization=Bearer%20{TOKEN}")
    assert TOKEN not in repr(settings)


def test_collector_headers_are_name_value_pairs_with_url_encoded_values() -> None:
    assert otlp_headers(f"Authorization=Bearer%20{TOKEN}, x-tenant = a%2Cb") == {
        "authorization": f"Bearer {TOKEN}",
        "x-tenant": "a,b",
    }
    assert otlp_headers(None) is None
    assert otlp_headers("") is None
