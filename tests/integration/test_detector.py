"""The detector against a real broker and store: alerts stored, published, listed (issue 6)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema

from adapters.clock import FixedClock
from adapters.kafka import KafkaConfig, start_producer
from api.bootstrap import build_detector
from api.settings import Settings
from domain import admin_scopes
from projections.alert_format import ALERT_TYPE
from tests.integration.helpers import basic, register, running
from tests.integration.test_admin_api import START, Admin
from tests.kafka import consume

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / f"{ALERT_TYPE}.json").read_text()
)


def detecting(settings: Settings) -> Settings:
    return replace(
        settings,
        alerts_topic=f"alerts-{uuid.uuid4().hex[:8]}",
        detect_group=f"detector-{uuid.uuid4().hex[:8]}",
        detect_session_timeout_ms=2000,  # the embedded broker joins a group in half of it
    )


async def wrong_secrets(http: Any, client_id: str, n: int) -> None:
    """`n` failed authentications (401, then 429 once the throttle's burst of 20 is spent)."""
    for _ in range(n):
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers=basic(client_id, "kl_secret_guess"),
        )
        assert response.status_code in (401, 429)


def failures_counted(service: Any, client_id: str) -> int:
    """Failed authentications of the client the detector has counted (messages carry counts)."""
    tally = service.detector.state()["tallies"].get(f"brute_force|client|{client_id}")
    return int(tally["count"]) if tally else 0


async def until(condition: Any, within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - other tasks make it true
            await asyncio.sleep(0.05)


async def test_a_brute_force_is_one_alert_stored_published_and_listed(
    kafka_settings: Settings,
) -> None:
    settings = detecting(kafka_settings)
    async with running(settings, FixedClock(START)) as (http, runtime):
        admin = Admin(http, runtime, FixedClock(START))
        await admin.login()
        target = await register(runtime)
        detector = build_detector(settings, runtime.ledger)
        task = asyncio.create_task(detector.run())
        try:
            await wrong_secrets(http, target.client_id, 25)
            await until(lambda: detector.raised >= 1)
            await asyncio.sleep(0.5)  # nothing more should come
            listed = (await admin.call("GET", "/admin/alerts?rule=brute_force")).json()["alerts"]
        finally:
            detector.stop()
            await task
    # One alert; its count is what the window held when it was raised: the failures arrive
    # counted (one message per source, client and reason per second), so at least the 10.
    assert [(a["rule"], a["subject"]) for a in listed] == [("brute_force", target.client_id)]
    assert 10 <= listed[0]["count"] <= 25
    assert 1 <= len(listed[0]["evidence"]) <= 10
    records = await consume(settings.kafka_address, settings.alerts_topic, lambda rs: len(rs) >= 1)
    assert [r.message["data"]["rule"] for r in records] == ["brute_force"]
    assert records[0].message["id"] == listed[0]["id"]
    jsonschema.validate(records[0].message, SCHEMA)


async def test_a_restart_mid_window_neither_repeats_nor_misses_the_alert(
    kafka_settings: Settings,
) -> None:
    settings = detecting(kafka_settings)
    async with running(settings, FixedClock(START)) as (http, runtime):
        target = await register(runtime)
        first = build_detector(settings, runtime.ledger)
        task = asyncio.create_task(first.run())
        await wrong_secrets(http, target.client_id, 6)
        await until(lambda: failures_counted(first, target.client_id) >= 6)
        first.stop()
        await task
        assert first.raised == 0
        await wrong_secrets(http, target.client_id, 6)  # the window's 7th to 12th failures
        second = build_detector(settings, runtime.ledger)
        task = asyncio.create_task(second.run())
        try:
            await until(lambda: second.raised >= 1)
            await wrong_secrets(http, target.client_id, 3)
            await until(lambda: failures_counted(second, target.client_id) >= 15)
        finally:
            second.stop()
            await task
        stored = runtime.alerts.alerts()
    assert [a.rule for a in stored] == ["brute_force"]
    assert 10 <= stored[0].count <= 12  # the 6 counted before the restart, and 4 to 6 after
    records = await consume(settings.kafka_address, settings.alerts_topic, lambda rs: len(rs) >= 1)
    assert len(records) == 1


async def test_the_opt_in_response_revokes_the_misused_secret_generations_tokens(
    kafka_settings: Settings,
) -> None:
    settings = replace(detecting(kafka_settings), detect_revoke_on_retired_secret=True)
    async with running(settings) as (http, runtime):
        target = await register(runtime)
        cid, old_secret = target.client_id, target.client_secret
        runtime.admin.rotate_secret(
            cid, grace=timedelta(0), by=admin_scopes.Admin.installation("t")
        )
        await until(lambda: len(runtime.view.get(cid).secrets) == 2)  # type: ignore[union-attr]
        detector = build_detector(settings, runtime.ledger)
        task = asyncio.create_task(detector.run())
        try:
            response = await http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                headers=basic(cid, old_secret),
            )
            assert response.status_code == 401
            await until(lambda: detector.raised >= 1)
        finally:
            detector.stop()
            await task
        history = runtime.admin.history(cid, by=admin_scopes.Admin.installation("t"))
    revocations = [h for h in history if h["event"] == "tokens_revoked"]
    assert [(h["actor"], h["changes"]["secret_generation"]) for h in revocations] == [
        ("detector", 1)
    ]


async def test_bad_alert_queries_get_a_clear_error(kafka_settings: Settings) -> None:
    settings = detecting(kafka_settings)
    async with running(settings, FixedClock(START)) as (http, runtime):
        admin = Admin(http, runtime, FixedClock(START))
        await admin.login()
        answers = [
            await admin.call("GET", f"/admin/alerts?{query}")
            for query in ("since=yesterday", "rule=bogus", "limit=0", "limit=5000", "limit=x")
        ]
    assert [a.status_code for a in answers] == [422, 422, 422, 422, 400]
    assert all("error" in a.json() for a in answers)


async def test_garbage_on_the_audit_topic_is_skipped_and_detection_goes_on(
    kafka_settings: Settings,
) -> None:
    settings = detecting(kafka_settings)
    producer = await start_producer(KafkaConfig(settings.kafka_address, idempotence="off"))
    async with running(settings, FixedClock(START)) as (http, runtime):
        target = await register(runtime)
        for junk in (b"not json", b"[1, 2]", b'{"type": "x", "time": "not a time"}', b"\xff"):
            await producer.send_and_wait(settings.audit_topic, junk, b"junk")
        await producer.stop()
        detector = build_detector(settings, runtime.ledger)
        task = asyncio.create_task(detector.run())
        try:
            await wrong_secrets(http, target.client_id, 10)
            await until(lambda: detector.raised >= 1)
        finally:
            detector.stop()
            await task
    assert [a.rule for a in runtime.alerts.alerts()] == ["brute_force"]
    assert detector.consumed >= 5  # the junk, and the failures (counted in one or two)
