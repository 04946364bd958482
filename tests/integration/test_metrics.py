"""`GET /metrics`: what an operator alerts on, with bounded labels."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from api.settings import Settings
from tests.integration.helpers import FORM, basic, register, running

pytestmark = pytest.mark.asyncio
TOKEN = "grant_type=client_credentials"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def test_tokens_errors_failures_latency_and_lag_are_exported(settings: Settings) -> None:
    every_client = replace(settings, metrics_client_labels="all")
    async with running(every_client) as (client, runtime):
        created = await register(runtime)
        before = (await client.get("/metrics")).text
        for _ in range(3):
            ok = await client.post(
                "/oauth2/token",
                content=TOKEN,
                headers=basic(created.client_id, created.client_secret),
            )
            assert ok.status_code == 200
        wrong = await client.post(
            "/oauth2/token", content=TOKEN, headers=basic(created.client_id, "nope")
        )
        unknown = await client.post("/oauth2/token", content=TOKEN, headers=basic("who-knows", "x"))
        scope = await client.post(
            "/oauth2/token",
            content=f"{TOKEN}&scope=admin",
            headers=basic(created.client_id, created.client_secret),
        )
        assert (wrong.status_code, unknown.status_code, scope.status_code) == (401, 401, 400)
        response = await client.get("/metrics")

    text = response.text
    assert response.headers["content-type"].startswith("text/plain")
    cid = created.client_id

    def delta(name: str, **labels: str) -> float:
        return value(text, name, **labels) - value(before, name, **labels)

    assert delta("keyledger_tokens_issued_total", client_id=cid) == 3
    assert (
        delta(
            "keyledger_oauth_errors_total",
            route="/oauth2/token",
            error="invalid_client",
            client_id=cid,
        )
        == 1
    )
    assert (
        delta(
            "keyledger_oauth_errors_total",
            route="/oauth2/token",
            error="invalid_client",
            client_id="unregistered",
        )
        == 1
    )
    assert (
        delta(
            "keyledger_oauth_errors_total",
            route="/oauth2/token",
            error="invalid_scope",
            client_id=cid,
        )
        == 1
    )
    assert delta("keyledger_authentication_failures_total", reason="wrong_secret") == 1
    assert delta("keyledger_authentication_failures_total", reason="unknown_client") == 1
    latency = "keyledger_http_request_duration_seconds_count"
    assert delta(latency, route="/oauth2/token", method="POST", status="2xx") == 3
    assert delta(latency, route="/oauth2/token", method="POST", status="4xx") == 3
    assert delta("keyledger_event_store_write_batch_size_sum") >= 3
    for projection in ("clients", "revoked-tokens", "analytics", "audit-relay"):
        assert ("keyledger_projection_lag_events", (("projection", projection),)) in samples(text)
    assert "keyledger_relay_lag_events" in text
    assert "keyledger_relay_publish_errors_total" in text
    assert "keyledger_observations_dropped_total" in text


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    client_ids=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=5),
    paths=st.lists(st.text(alphabet="abc/{}%.-_", min_size=1, max_size=20), max_size=3),
)
async def test_labels_never_carry_what_a_caller_made_up(
    sqlite_url: str, tmp_path: Any, client_ids: list[str], paths: list[str]
) -> None:
    made_up = Settings(database_url=sqlite_url, keys_dir=tmp_path / "keys", kafka_bootstrap="off")
    async with running(made_up) as (client, runtime):
        created = await register(runtime)
        for client_id in client_ids:
            await client.post(
                "/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": "x",
                },
                headers=FORM,
            )
        for path in paths:
            await client.get(f"/admin/clients/{path}")
        text = (await client.get("/metrics")).text
        templates = {route.path_format for route in client.app.routes} | {
            route.path for route in client.app.routes
        }
    registered = {created.client_id, "unregistered"} | {r.client_id for r in runtime.view.all()}
    for (name, labels), _ in samples(text).items():
        label = dict(labels)
        if "client_id" in label:  # counters are per process: other tests' clients are here too
            made_up = set(client_ids) - registered
            assert label["client_id"] not in made_up, name
        if name.startswith("keyledger_http_") and "route" in label:
            assert label["route"] in templates | {"unmatched"}, label
