"""`/admin/analytics/...`: reports from the analytics projection a serving process keeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from adapters.clock import FixedClock
from api.settings import Settings
from api.usecases.analytics import analytics_table
from api.usecases.projection_rebuild import copy_until
from tests.integration.helpers import basic, running
from tests.integration.test_admin_api import START, Admin, new_client

pytestmark = pytest.mark.asyncio
TOKEN = "grant_type=client_credentials"


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[Admin]:
    clock = FixedClock(START)
    async with running(replace(settings, analytics_interval=0.05), clock) as (http, runtime):
        admin = Admin(http, runtime, clock)
        await admin.login()
        yield admin


async def tokens(admin: Admin, client: dict[str, str], count: int, scope: str) -> None:
    await asyncio.to_thread(admin.runtime.follower.catch_up)
    for _ in range(count):
        response = await admin.http.post(
            "/oauth2/token",
            content=f"{TOKEN}&scope={scope}",
            headers=basic(client["client_id"], client["client_secret"]),
        )
        assert response.status_code == 200, response.text


async def analytics_caught_up(admin: Admin) -> None:
    table = analytics_table(admin.runtime.ledger)
    async with asyncio.timeout(5):
        while table.position() < admin.runtime.ledger.head():  # noqa: ASYNC110 - a thread writes it
            await asyncio.sleep(0.05)


async def test_issuance_per_hour_and_day_counts_tokens_scopes_and_audiences(admin: Admin) -> None:
    billing = await new_client(admin, audiences=["https://api.example"])
    await tokens(admin, billing, 3, "a")
    await tokens(admin, billing, 2, "a%20b")
    await analytics_caught_up(admin)

    hourly = (await admin.call("GET", "/admin/analytics/issuance")).json()
    daily = (await admin.call("GET", "/admin/analytics/issuance?granularity=day")).json()

    mine = [b for b in hourly["buckets"] if b["client_id"] == billing["client_id"]]
    assert mine == [
        {
            "bucket": "2026-11-20T10",
            "client_id": billing["client_id"],
            "client_name": "billing",
            "issued": 5,
            "revoked": 0,
            "scopes": {"a": 5, "b": 2},
            "audiences": {"https://api.example": 5},
        }
    ]
    assert [b["bucket"] for b in daily["buckets"] if b["client_id"] == billing["client_id"]] == [
        "2026-11-20"
    ]


async def test_top_clients_ranks_by_tokens_in_the_window(admin: Admin) -> None:
    busy = await new_client(admin, name="busy")
    quiet = await new_client(admin, name="quiet")
    await tokens(admin, busy, 4, "a")
    await tokens(admin, quiet, 1, "a")
    await analytics_caught_up(admin)
    top = (await admin.call("GET", "/admin/analytics/top-clients?limit=3")).json()
    ranked = [(c["client_name"], c["issued"]) for c in top["clients"]]
    assert ranked[0] == ("busy", 4)
    assert sorted(ranked[1:]) == [("ops", 1), ("quiet", 1)]  # the admin got a token too
    one = (await admin.call("GET", "/admin/analytics/top-clients?limit=1")).json()
    assert [c["client_name"] for c in one["clients"]] == ["busy"]


async def test_clients_report_flags_old_secrets_and_dormant_clients(admin: Admin) -> None:
    used = await new_client(admin, name="used")
    await new_client(admin, name="idle")
    await tokens(admin, used, 1, "a")
    admin.clock.advance(timedelta(days=40).total_seconds())
    await admin.login()  # the first admin token has long expired: a new admin client
    await analytics_caught_up(admin)

    report = (await admin.call("GET", "/admin/analytics/clients?rotation_days=30")).json()

    rows = {c["name"]: c for c in report["clients"]}
    assert report["by_status"] == {"active": 4, "suspended": 0, "deleted": 0}  # 2 admins
    assert rows["used"]["rotation_due"]
    assert rows["idle"]["rotation_due"]
    assert rows["used"]["last_token_at"] == START.isoformat()
    assert rows["idle"]["last_token_at"] is None
    assert rows["used"]["dormant"]  # 40 days > 30 by default
    assert rows["idle"]["dormant"]
    fresh = (await admin.call("GET", "/admin/analytics/clients?dormant_days=60")).json()
    assert not {c["name"]: c for c in fresh["clients"]}["used"]["dormant"]
    assert fresh["rotation_policy_days"] == 90


@pytest.mark.parametrize(
    "query",
    [
        "/admin/analytics/issuance?granularity=week",
        "/admin/analytics/issuance?since=2026-11-21T00:00Z&until=2026-11-20T00:00Z",
        "/admin/analytics/issuance?since=yesterday",
        "/admin/analytics/issuance?since=2020-01-01T00:00Z",
        "/admin/analytics/top-clients?limit=0",
        "/admin/analytics/clients?rotation_days=-1",
    ],
)
async def test_bad_report_requests_are_422_invalid_request(admin: Admin, query: str) -> None:
    response = await admin.call("GET", query)
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")


async def test_reports_need_an_admin_token(admin: Admin) -> None:
    response = await admin.http.get("/admin/analytics/clients")
    assert response.status_code == 401


async def test_clients_can_be_listed_from_a_point_in_time_copy(admin: Admin) -> None:
    await new_client(admin, name="early")
    moment = admin.clock.now()
    admin.clock.advance(60)
    await new_client(admin, name="late")
    copy = copy_until(admin.runtime.ledger, "clients", moment, admin.clock.now(), lambda d, h: None)

    listed = await admin.call("GET", f"/admin/clients?as_of_copy={copy.copy}")
    missing = await admin.call("GET", "/admin/clients?as_of_copy=clients@20200101T000000Z")

    assert sorted(c["name"] for c in listed.json()) == ["early", "ops"]
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
