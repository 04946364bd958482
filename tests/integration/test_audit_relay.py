"""The audit relay and security observations, against a real store and a real broker."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx

from adapters.event_store import Ledger
from adapters.kafka import EmbeddedBroker
from api.bootstrap import Runtime, build_relay
from api.settings import Settings
from domain.admin_scopes import Admin
from domain.client import PRIVATE_KEY_JWT
from domain.client_settings import ClientSettings
from projections.audit_format import audit_event_id
from tests.assertions import assertion, assertion_claims, assertion_form, client_key, jwks_of, sign
from tests.conftest import free_port
from tests.integration.helpers import FORM, basic, register, running
from tests.kafka import Record, consume, count_at_least, distinct_ids, in_order_per_key

SECRET_HASH_PREFIX = "hmac-sha256"


def stored_ids(ledger: Ledger) -> list[str]:
    return [audit_event_id(ledger.mapper.to_domain_event(n)) for n in ledger.read(0, 100_000)]


async def until(condition: Any, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - other tasks and threads make it true
            await asyncio.sleep(0.02)


async def issue(client: Any, client_id: str, secret: str, **form: str) -> httpx.Response:
    response: httpx.Response = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", **form},
        headers={**basic(client_id, secret), "User-Agent": "audit-test/1"},
    )
    return response


async def a_busy_history(client: Any, runtime: Runtime) -> list[tuple[str, str]]:
    """Two clients, tokens for each, a rotation, a suspension; their (id, secret)s."""
    clients = []
    for name in ("orders", "stock"):
        created = await register(runtime, name=name)
        clients.append((created.client_id, created.client_secret))
        for _ in range(3):
            assert (
                await issue(client, created.client_id, created.client_secret)
            ).status_code == 200
    first = clients[0][0]
    runtime.admin.rotate_secret(first, grace=timedelta(0), by=Admin.installation("t"))
    runtime.admin.suspend(first, by=Admin.installation("t"), reason="leak")
    return clients


async def test_every_committed_event_reaches_the_topic_once_in_order_per_client(
    kafka_settings: Settings,
) -> None:
    async with running(kafka_settings) as (client, runtime):
        await a_busy_history(client, runtime)
        expected = stored_ids(runtime.ledger)
        assert runtime.relay is not None
        await until(lambda: runtime.relay is not None and runtime.relay.position >= len(expected))
    records = await consume(
        kafka_settings.kafka_address, kafka_settings.audit_topic, count_at_least(len(expected))
    )
    stored = [r for r in records if "sequence" in r.message]
    assert sorted(r.message["id"] for r in stored) == sorted(expected)  # all, and only once
    assert in_order_per_key(stored)
    assert all(r.key == r.message["subject"] for r in stored)


async def test_a_relay_that_has_caught_up_publishes_once_an_interval_not_once_an_event(
    kafka_settings: Settings,
) -> None:
    """A performance guard: a caught-up relay takes an interval's tokens in one batch."""
    paced = replace(kafka_settings, follow_interval=0.5)
    async with running(paced) as (client, runtime):
        created = await register(runtime)
        relay = runtime.relay
        assert relay is not None
        await until(lambda: relay.active and relay.position >= runtime.ledger.head())
        batches: list[int] = []
        publish = relay.publish_batch

        async def counted() -> int:
            published = await publish()
            if published:
                batches.append(published)
            return published

        relay.publish_batch = counted  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        began, issued = loop.time(), 0
        while loop.time() - began < 2.0:  # tokens back to back, faster than a publish
            response = await issue(client, created.client_id, created.client_secret)
            assert response.status_code == 200
            issued += 1
        await until(lambda: relay.position >= runtime.ledger.head())
        elapsed = loop.time() - began
    assert sum(batches) == issued
    assert len(batches) <= elapsed / 0.5 + 2, batches


async def test_the_position_is_stored_only_after_the_broker_acknowledged(
    settings: Settings,
) -> None:
    port = free_port()
    down = replace(
        settings,
        kafka_bootstrap=f"127.0.0.1:{port}",
        audit_topic="audit-late",
        relay_backoff_max=0.3,
    )
    async with running(down) as (client, runtime):
        created = await register(runtime)
        for _ in range(5):
            assert (
                await issue(client, created.client_id, created.client_secret)
            ).status_code == 200
        relay = runtime.relay
        assert relay is not None
        await until(lambda: relay.publish_errors >= 2)
        assert relay.position == 0  # nothing acknowledged, nothing stored
        expected = stored_ids(runtime.ledger)
        with EmbeddedBroker("127.0.0.1", port) as broker:
            await until(lambda: relay.position >= len(expected), within=20)
            records = await consume(broker.bootstrap, "audit-late", count_at_least(len(expected)))
    assert distinct_ids([r for r in records if "sequence" in r.message]) == set(expected)


async def test_one_relay_publishes_and_a_standby_takes_over_when_it_stops(
    kafka_settings: Settings,
) -> None:
    async with running(kafka_settings) as (client, runtime):
        created = await register(runtime)
        first = runtime.relay
        assert first is not None
        await until(lambda: first.active and first.position > 0)
        standby = build_relay(kafka_settings, runtime.ledger)
        standby_task = asyncio.create_task(standby.run())
        try:
            await asyncio.sleep(1.5)  # the standby tried for the lock and waits
            assert not standby.active
            first.stop()
            await until(lambda: standby.active, within=5)
            for _ in range(3):
                response = await issue(client, created.client_id, created.client_secret)
                assert response.status_code == 200
            expected = stored_ids(runtime.ledger)
            await until(lambda: standby.position >= len(expected))
        finally:
            standby.stop()
            await standby_task
    records = await consume(
        kafka_settings.kafka_address, kafka_settings.audit_topic, count_at_least(len(expected))
    )
    stored = [r for r in records if "sequence" in r.message]
    assert sorted(r.message["id"] for r in stored) == sorted(expected)


def observations(records: list[Record]) -> list[dict[str, Any]]:
    return [r.message for r in records if r.type.startswith("keyledger.security.")]


async def test_failed_authentications_are_observed_with_their_reason_and_origin(
    kafka_settings: Settings,
) -> None:
    async with running(kafka_settings) as (client, runtime):
        created = await register(runtime)
        cid, secret = created.client_id, created.client_secret
        runtime.admin.rotate_secret(cid, grace=timedelta(hours=1), by=Admin.installation("t"))
        runtime.admin.revoke_previous_secret(cid, by=Admin.installation("t"), reason=None)
        await until(lambda: bool(runtime.view.get(cid).retired_secrets))  # type: ignore[union-attr]
        assert (await issue(client, cid, "kl_secret_wrong")).status_code == 401
        assert (await issue(client, cid, secret)).status_code == 401  # the revoked one
        assert (await issue(client, "nobody", secret)).status_code == 401
        response = await client.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": cid},
            headers=FORM,
        )
        assert response.status_code == 401
        await until(lambda: runtime.observations.published >= 4)
    records = await consume(
        kafka_settings.kafka_address,
        kafka_settings.audit_topic,
        lambda rs: len(observations(rs)) >= 4,
    )
    seen = {(m["data"]["client_id"], m["data"]["reason"]) for m in observations(records)}
    assert seen == {
        (cid, "wrong_secret"),
        (cid, "revoked_secret"),
        ("nobody", "unknown_client"),
        (cid, "no_client_authentication"),
    }
    for message in observations(records):
        assert message["type"] == "keyledger.security.authentication_failed.v1"
        assert message["data"]["source_ip"]
        assert message["data"]["endpoint"] == "/oauth2/token"
        assert secret not in str(message)
        assert SECRET_HASH_PREFIX not in str(message)


async def test_rejected_token_requests_are_observed(kafka_settings: Settings) -> None:
    async with running(kafka_settings) as (client, runtime):
        created = await register(runtime, audiences=["https://api.example"])
        cid, secret = created.client_id, created.client_secret
        assert (await issue(client, cid, secret, scope="admin")).status_code == 400
        assert (await issue(client, cid, secret, resource="https://other")).status_code == 400
        await until(lambda: runtime.observations.published >= 2)
    records = await consume(
        kafka_settings.kafka_address,
        kafka_settings.audit_topic,
        lambda rs: len(observations(rs)) >= 2,
    )
    seen = {
        (m["type"], m["data"]["error"], m["data"]["reason"], m["data"]["user_agent"])
        for m in observations(records)
    }
    assert seen == {
        (
            "keyledger.security.token_request_rejected.v1",
            "invalid_scope",
            "scope_not_allowed",
            "audit-test/1",
        ),
        (
            "keyledger.security.token_request_rejected.v1",
            "invalid_target",
            "resource_not_allowed",
            "audit-test/1",
        ),
    }


async def test_a_full_observation_buffer_drops_and_counts_and_never_blocks_a_request(
    settings: Settings,
) -> None:
    nowhere = replace(settings, kafka_bootstrap=f"127.0.0.1:{free_port()}", observation_buffer=5)
    async with running(nowhere) as (client, runtime):
        created = await register(runtime)
        for i in range(30):  # distinct client ids: failures of one client would be counted as one
            response = await issue(client, f"made-up-{i}", "kl_secret_wrong")
            assert response.status_code in (401, 429)  # 429 past the throttle's burst
        assert runtime.observations.recorded == 30
        # Held at most: a batch in the publisher, the buffer and the tally (5 each), where the
        # client ids past the 20th that one source tries in a second count as one.
        assert runtime.observations.dropped >= 5
        assert (await issue(client, created.client_id, created.client_secret)).status_code == 200


async def test_failed_client_assertions_are_observed_with_the_check_that_failed(
    kafka_settings: Settings,
) -> None:
    async with running(kafka_settings) as (client, runtime):
        key, stranger = client_key(), client_key(kid="x")
        client_id = runtime.admin.register(
            ClientSettings.create(name="signer", allowed_scopes=["a"]),
            by=Admin.installation("t"),
            auth_method=PRIVATE_KEY_JWT,
            jwks=jwks_of(key),
        ).client_id
        runtime.follower.catch_up()
        once = assertion(key, client_id)
        assert (await client.post("/oauth2/token", data=assertion_form(once))).status_code == 200
        for attempt in (
            once,
            sign(stranger, assertion_claims(client_id), headers={"kid": key.kid}),
        ):
            response = await client.post("/oauth2/token", data=assertion_form(attempt))
            assert response.status_code == 401
        await until(lambda: runtime.observations.published >= 2)
    records = await consume(
        kafka_settings.kafka_address,
        kafka_settings.audit_topic,
        lambda rs: len(observations(rs)) >= 2,
    )
    seen = {
        (m["data"]["client_id"], m["data"]["auth_method"], m["data"]["reason"])
        for m in observations(records)
    }
    assert seen == {
        (client_id, "private_key_jwt", "assertion_replayed"),
        (client_id, "private_key_jwt", "assertion_signature_invalid"),
    }
    issued = [r.message for r in records if r.type == "keyledger.token.issued.v1"]
    assert [m["data"]["auth_method"] for m in issued] == ["private_key_jwt"]
