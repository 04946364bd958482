"""The ledger through HTTP: public checkpoints and keys, admin proofs that verify against them."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace
from typing import Any

from click.testing import CliRunner

from adapters.ledger_signer import ed25519_verify
from api.cli.main import cli
from api.settings import Settings
from domain.admin_scopes import KEYS, READ
from domain.checkpoint import NoteKey, open_checkpoint
from domain.merkle_tree import leaf_hash, verify_consistency, verify_inclusion
from tests.integration.helpers import basic, running
from tests.integration.test_signing_keys_admin_api import bearer, token_for
from tests.kafka import consume


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def ledger_settings(settings: Settings) -> Settings:
    return replace(
        settings, ledger_origin="auth.example.test/ledger", ledger_checkpoint_interval=3600
    )


async def test_an_admin_checkpoint_is_published_and_an_events_inclusion_proof_verifies_against_it(
    settings: Settings,
) -> None:
    async with running(ledger_settings(settings)) as (http, runtime):
        assert (await http.get("/ledger/checkpoint")).status_code in (200, 404)
        _, keys_token = await token_for(http, runtime, KEYS)
        asked = await http.post(
            "/admin/ledger/checkpoints", json={"reason": "audit"}, headers=bearer(keys_token)
        )
        assert asked.status_code == 201, asked.text
        signed = asked.json()["checkpoint"]
        [key] = (await http.get("/ledger/keys")).json()["keys"]
        verifier = NoteKey.decode(key["verifier_key"])
        public = await http.get("/ledger/checkpoint")
        assert public.headers["content-type"].startswith("text/plain")
        checkpoint = open_checkpoint(public.text, verifier, ed25519_verify)
        assert (checkpoint.origin, checkpoint.size) == ("auth.example.test/ledger", signed["size"])

        proof = await http.get(
            "/admin/ledger/proofs/inclusion", params={"position": 3}, headers=bearer(keys_token)
        )
        assert proof.status_code == 200, proof.text
        body = proof.json()
        assert body["checkpoint"] == public.text
        leaf = leaf_hash(b64(body["entry"]))
        assert verify_inclusion(
            leaf, body["index"], body["size"], [b64(p) for p in body["path"]], checkpoint.root
        )


async def test_an_inclusion_proof_finds_its_event_by_aggregate_id_and_version(
    settings: Settings,
) -> None:
    async with running(ledger_settings(settings)) as (http, runtime):
        _, keys_token = await token_for(http, runtime, KEYS)
        asked = await http.post("/admin/ledger/checkpoints", headers=bearer(keys_token))
        assert asked.status_code == 201, asked.text
        by_position = await http.get(
            "/admin/ledger/proofs/inclusion", params={"position": 3}, headers=bearer(keys_token)
        )
        [event] = runtime.ledger.read(2, 1)
        by_event = await http.get(
            "/admin/ledger/proofs/inclusion",
            params={"aggregate": str(event.originator_id), "version": event.originator_version},
            headers=bearer(keys_token),
        )
        assert by_event.status_code == 200, by_event.text
        assert by_event.json() == by_position.json()


async def test_two_checkpoints_are_proved_consistent_and_listed_in_order(
    settings: Settings,
) -> None:
    async with running(ledger_settings(settings)) as (http, runtime):
        client_id, token = await token_for(http, runtime, KEYS, READ)
        first = (await http.post("/admin/ledger/checkpoints", headers=bearer(token))).json()
        for _ in range(5):
            await http.post(
                "/oauth2/token",
                content="grant_type=client_credentials",
                headers=basic(client_id, "wrong"),
            )
        _, other = await token_for(http, runtime, READ)
        second = (await http.post("/admin/ledger/checkpoints", headers=bearer(token))).json()
        old, new = first["checkpoint"], second["checkpoint"]
        listed = (await http.get("/ledger/checkpoints")).json()["checkpoints"]
        assert [c["size"] for c in listed] == [old["size"], new["size"]]
        proof = await http.get(
            "/admin/ledger/proofs/consistency",
            params={"from": old["size"], "to": new["size"]},
            headers=bearer(other),
        )
        assert proof.status_code == 200, proof.text
        assert verify_consistency(
            old["size"],
            new["size"],
            b64(old["root"]),
            b64(new["root"]),
            [b64(p) for p in proof.json()["proof"]],
        )


async def test_asking_for_a_checkpoint_needs_the_keys_scope_and_bad_sizes_are_refused(
    settings: Settings,
) -> None:
    async with running(ledger_settings(settings)) as (http, runtime):
        _, reader = await token_for(http, runtime, READ)
        refused = await http.post("/admin/ledger/checkpoints", headers=bearer(reader))
        assert refused.status_code == 403
        assert 'scope="keyledger:admin:keys"' in refused.headers["www-authenticate"]
        bad = await http.get(
            "/admin/ledger/proofs/consistency",
            params={"from": 5, "to": 10**9},
            headers=bearer(reader),
        )
        assert (bad.status_code, bad.json()["error"]) == (422, "invalid_request")
        nothing = await http.get(
            "/admin/ledger/proofs/inclusion", params={"position": 10**9}, headers=bearer(reader)
        )
        assert nothing.status_code == 422
        assert (await http.get("/admin/ledger/proofs/inclusion")).status_code == 401


async def test_a_rotated_ledger_key_signs_the_next_checkpoint_and_both_stay_published(
    settings: Settings,
) -> None:
    async with running(ledger_settings(settings)) as (http, runtime):
        _, token = await token_for(http, runtime, KEYS)
        before = (await http.post("/admin/ledger/checkpoints", headers=bearer(token))).json()
        rotated = await http.post(
            "/admin/ledger/keys/rotate", json={"reason": "yearly"}, headers=bearer(token)
        )
        assert rotated.status_code == 201, rotated.text
        new_key = NoteKey.decode(rotated.json()["key"]["verifier_key"])
        after = (await http.post("/admin/ledger/checkpoints", headers=bearer(token))).json()
        assert (
            open_checkpoint(after["checkpoint"]["note"], new_key, ed25519_verify).size
            > before["checkpoint"]["size"]
        )
        keys: list[dict[str, Any]] = (await http.get("/ledger/keys")).json()["keys"]
        assert len(keys) == 2


async def test_the_audit_topic_alone_verifies_the_ledger_with_the_public_key(
    kafka_settings: Settings, monkeypatch: Any
) -> None:
    settings = ledger_settings(kafka_settings)
    async with running(settings) as (http, runtime):
        _, token = await token_for(http, runtime, KEYS)
        signed = (await http.post("/admin/ledger/checkpoints", headers=bearer(token))).json()
        [key] = (await http.get("/ledger/keys")).json()["keys"]
        size = signed["checkpoint"]["size"]
        published = await consume(
            settings.kafka_address,
            settings.audit_topic,
            lambda rs: any(r.type == "keyledger.ledger.checkpoint_signed.v1" for r in rs),
        )
        assert len({r.message["id"] for r in published}) >= size
    for name, value in {
        "KEYLEDGER_KAFKA_BOOTSTRAP": settings.kafka_address,
        "KEYLEDGER_AUDIT_TOPIC": settings.audit_topic,
        "KEYLEDGER_DATABASE_URL": "sqlite:////nonexistent/not-needed.db",
    }.items():
        monkeypatch.setenv(name, value)
    args = ["ledger", "verify", "--audit-topic", "--key", key["verifier_key"], "--json"]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)  # the CLI runs its own loop
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report
    assert f"audit topic checkpoint {size}" in [c["source"] for c in report["checkpoints"]]


async def test_a_checkpoint_request_wakes_the_builder_in_this_process_without_waiting_a_step(
    settings: Settings,
) -> None:
    async with running(ledger_settings(settings)) as (http, runtime):
        assert runtime.ledger_service is not None
        runtime.ledger_service.config = replace(runtime.ledger_service.config, interval=3600)
        _, keys_token = await token_for(http, runtime, KEYS)
        await asyncio.sleep(0.5)  # the builder has taken its first step and sleeps an hour
        asked = await http.post("/admin/ledger/checkpoints", json={}, headers=bearer(keys_token))
        assert asked.status_code == 201, asked.text
        assert asked.json()["checkpoint"] is not None
