"""Per-client issuance quotas (issue 6, part 8)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from adapters.clock import FixedClock
from api.settings import Settings
from api.usecases.client_admin import ClientChanges, Quotas
from domain import admin_scopes
from tests.integration.helpers import basic, register, running, wait_for_client
from tests.integration.test_admin_api import Admin
from tests.kafka import consume

START = datetime(2026, 11, 20, 10, 0, 20, tzinfo=UTC)  # 40 s before the minute ends


async def tokens(http: Any, client_id: str, secret: str, n: int) -> list[Any]:
    return [
        await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers=basic(client_id, secret),
        )
        for _ in range(n)
    ]


async def set_quota(runtime: Any, client_id: str, **quotas: int | None) -> None:
    runtime.admin.update(
        client_id,
        ClientChanges(
            quotas=Quotas(
                tokens_per_minute=quotas.get("per_minute"), tokens_per_day=quotas.get("per_day")
            )
        ),
        by=admin_scopes.Admin.installation("test"),
        reason=None,
    )
    version = runtime.ledger.get_client(uuid.UUID(client_id)).version
    await wait_for_client(runtime, client_id)
    while runtime.view.get(client_id).version < version:  # noqa: ASYNC110 - a thread folds it
        await asyncio.sleep(0.01)


async def test_a_quota_of_ten_a_minute_gives_exactly_ten_tokens_in_a_minute(
    settings: Settings,
) -> None:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        created = await register(runtime)
        await set_quota(runtime, created.client_id, per_minute=10)
        answers = await tokens(http, created.client_id, created.client_secret, 15)
        assert Counter(r.status_code for r in answers) == {200: 10, 429: 5}
        refused = answers[-1]
        assert refused.json()["error"] == "too_many_requests"
        assert refused.headers["Retry-After"] == "40"  # to the end of the minute
        clock.advance(40)
        answers = await tokens(http, created.client_id, created.client_secret, 11)
        assert [r.status_code for r in answers] == [200] * 10 + [429]


async def test_a_daily_quota_holds_across_minutes(settings: Settings) -> None:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        created = await register(runtime)
        await set_quota(runtime, created.client_id, per_minute=3, per_day=5)
        first = await tokens(http, created.client_id, created.client_secret, 4)
        clock.advance(60)
        second = await tokens(http, created.client_id, created.client_secret, 4)
    assert [r.status_code for r in first] == [200, 200, 200, 429]
    assert [r.status_code for r in second] == [200, 200, 429, 429]
    assert int(second[-1].headers["Retry-After"]) > 3600  # until the UTC day ends


async def test_clients_without_a_quota_are_not_limited(settings: Settings) -> None:
    async with running(settings, FixedClock(START)) as (http, runtime):
        created = await register(runtime)
        answers = await tokens(http, created.client_id, created.client_secret, 30)
    assert {r.status_code for r in answers} == {200}


async def test_a_refused_request_is_a_quota_exceeded_observation(kafka_settings: Settings) -> None:
    async with running(kafka_settings, FixedClock(START)) as (http, runtime):
        created = await register(runtime)
        await set_quota(runtime, created.client_id, per_minute=1)
        assert [
            r.status_code for r in await tokens(http, created.client_id, created.client_secret, 2)
        ] == [200, 429]
        async with asyncio.timeout(10):
            while runtime.observations.published < 1:  # noqa: ASYNC110 - a task publishes
                await asyncio.sleep(0.02)
    records = await consume(
        kafka_settings.kafka_address,
        kafka_settings.audit_topic,
        lambda rs: any(r.type == "keyledger.security.quota_exceeded.v1" for r in rs),
    )
    exceeded = [r.message for r in records if r.type == "keyledger.security.quota_exceeded.v1"]
    assert [(m["subject"], m["data"]["reason"]) for m in exceeded] == [
        (created.client_id, "quota_per_minute")
    ]


async def test_quotas_are_set_over_the_admin_api(settings: Settings) -> None:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        admin = Admin(http, runtime, clock)
        await admin.login()
        created = await register(runtime)
        response = await admin.call(
            "PATCH",
            f"/admin/clients/{created.client_id}",
            json={"quotas": {"tokens_per_minute": 2, "tokens_per_day": None}},
        )
        assert response.status_code == 200, response.text
        assert response.json()["quotas"] == {"tokens_per_minute": 2, "tokens_per_day": None}
        bad = await admin.call(
            "PATCH",
            f"/admin/clients/{created.client_id}",
            json={"quotas": {"tokens_per_minute": 0}},
        )
        assert bad.status_code == 422
