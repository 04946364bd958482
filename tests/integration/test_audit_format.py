"""The audit message format: CloudEvents 1.0 per domain event and per security observation."""

from __future__ import annotations

import json
from base64 import b64decode
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import jsonschema
import pytest
from eventsourcing.domain import Aggregate

from adapters.client_secrets import SecretHasher
from adapters.clock import FixedClock
from adapters.event_store import Ledger
from adapters.key_vault import KeyVault
from adapters.ledger_store import LedgerTables
from api.usecases.client_admin import ClientAdmin, ClientChanges, Quotas
from api.usecases.signing_keys import SigningKeyAdmin
from domain.admin_scopes import Admin
from domain.client import PRIVATE_KEY_JWT, Client
from domain.client_settings import ClientSettings
from domain.installation import Installation
from domain.ledger_keys import CheckpointRequest, LedgerCheckpoint, LedgerKeys
from domain.oauth_errors import InvalidClient, InvalidRequest, InvalidScope, InvalidTarget
from domain.observations import AUTHENTICATION_FAILURE_REASONS, SecurityObservation
from domain.signing_keys import SigningKeys
from domain.token import IssuedToken
from projections.alert_format import ALERT_TYPE, alert_schema
from projections.audit_format import (
    AUDIT_TYPES,
    SECURITY_TYPES,
    all_schemas,
    audit_event_id,
    cloud_event,
    security_event,
)
from projections.ledger import LedgerBuilder, entry_of
from projections.ledger_service import LedgerConfig, LedgerKeyring, LedgerService
from projections.topics import AUDIT_TOPIC, asyncapi_document
from tests.assertions import client_key, jwks_of
from tests.integration.test_ledger_checkpoints import always_held

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
SOURCE = "https://auth.example.test"
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


BASES = {"Event", "Created", "Changed"}  # eventsourcing's and ours; never stored themselves


def _event_classes(aggregate: type[Any]) -> set[type[Any]]:
    return {
        value
        for value in vars(aggregate).values()
        if isinstance(value, type)
        and issubclass(value, Aggregate.Event)
        and value.__name__ not in BASES
    }


def test_every_stored_event_type_has_an_audit_type() -> None:
    stored = (
        _event_classes(Client)
        | _event_classes(IssuedToken)
        | _event_classes(SigningKeys)
        | _event_classes(Installation)
        | _event_classes(LedgerKeys)
        | _event_classes(LedgerCheckpoint)
        | _event_classes(CheckpointRequest)
    )
    assert stored == set(AUDIT_TYPES)


@pytest.mark.parametrize("event_type", list(all_schemas()))
def test_the_committed_schema_is_the_one_the_code_generates(event_type: str) -> None:
    committed = json.loads((SCHEMAS / f"{event_type}.json").read_text())
    assert committed == all_schemas()[event_type], "run `make schemas` and commit the result"


def test_the_committed_asyncapi_document_is_the_one_the_code_generates() -> None:
    committed = json.loads((SCHEMAS / "asyncapi.json").read_text())
    assert committed == asyncapi_document(), "run `make schemas` and commit the result"


def test_there_is_one_schema_file_per_type_and_no_other() -> None:
    expected = {*AUDIT_TYPES.values(), *SECURITY_TYPES.values(), ALERT_TYPE, "asyncapi"}
    assert {p.stem for p in SCHEMAS.glob("*.json")} == expected


def test_the_asyncapi_document_describes_every_type_on_the_audit_topic() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    channel = document["channels"]["audit"]
    assert channel["address"] == AUDIT_TOPIC
    payloads = {m["payload"]["$ref"] for m in document["components"]["messages"].values()}
    assert payloads == {f"./{t}.json" for t in [*all_schemas(), ALERT_TYPE]}
    assert all((SCHEMAS / ref.removeprefix("./")).is_file() for ref in payloads)
    for ref in document["operations"]["publishAudit"]["messages"]:
        name = ref["$ref"].removeprefix("#/channels/audit/messages/")
        assert channel["messages"][name] == {"$ref": f"#/components/messages/{name}"}


def _observation(error: Exception, **fields: Any) -> SecurityObservation:
    observation = SecurityObservation.of_error(
        error,  # type: ignore[arg-type]
        endpoint="/oauth2/token",
        at=datetime(2026, 11, 20, tzinfo=UTC),
        client_id=fields.get("client_id", "c1"),
        auth_method="client_secret_basic",
        source_ip="192.0.2.7",
        user_agent=fields.get("user_agent", "curl/8"),
        requested_scope=fields.get("scope"),
        requested_resources=fields.get("resources", ()),
    )
    assert observation is not None
    return observation


@pytest.mark.parametrize("reason", AUTHENTICATION_FAILURE_REASONS)
def test_every_authentication_failure_reason_validates(reason: str) -> None:
    message = security_event(_observation(InvalidClient(reason=reason)), str(uuid4()), SOURCE)
    schema = json.loads((SCHEMAS / f"{message['type']}.json").read_text())
    jsonschema.validate(message, schema, format_checker=FORMATS)
    assert message["type"] == "keyledger.security.authentication_failed.v1"
    assert message["data"]["reason"] == reason


def test_a_reason_the_schema_does_not_name_fails_validation() -> None:
    message = security_event(_observation(InvalidClient(reason="new")), str(uuid4()), SOURCE)
    schema = json.loads((SCHEMAS / f"{message['type']}.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(message, schema, format_checker=FORMATS)


@pytest.mark.parametrize(
    "error",
    [InvalidScope(reason="scope_not_allowed"), InvalidTarget(reason="resource_not_allowed")],
)
def test_a_rejected_request_is_an_observation_that_validates(error: Exception) -> None:
    observation = _observation(error, scope="x " * 400, resources=("https://a",) * 30)
    message = security_event(observation, str(uuid4()), SOURCE)
    schema = json.loads((SCHEMAS / f"{message['type']}.json").read_text())
    jsonschema.validate(message, schema, format_checker=FORMATS)
    assert message["type"] == "keyledger.security.token_request_rejected.v1"
    assert len(message["data"]["requested_resources"]) == 10  # caller input is bounded


def test_what_a_caller_chose_is_cut_to_a_bounded_size() -> None:
    observation = _observation(InvalidClient(reason="unknown_client"), client_id="c" * 10_000)
    message = security_event(observation, str(uuid4()), SOURCE)
    schema = json.loads((SCHEMAS / f"{message['type']}.json").read_text())
    jsonschema.validate(message, schema, format_checker=FORMATS)
    assert len(message["subject"]) == 200


def test_malformed_requests_are_not_security_observations() -> None:
    assert (
        SecurityObservation.of_error(
            InvalidRequest("x"),
            endpoint="/oauth2/token",
            at=datetime(2026, 11, 20, tzinfo=UTC),
            client_id=None,
            auth_method=None,
            source_ip=None,
            user_agent=None,
        )
        is None
    )


def _lifecycle(sqlite_url: str) -> tuple[Ledger, list[str]]:
    """A client through most of its life, with a token issued and revoked; its secrets."""
    ledger = Ledger(sqlite_url)
    clock = FixedClock(datetime(2026, 11, 20, tzinfo=UTC))
    ledger.save(Installation(kek_fingerprint="k" * 32, pepper_fingerprint="p" * 32, at=clock.now()))
    admin = ClientAdmin(ledger, SecretHasher(b"p" * 32), clock)
    ops, a = Admin.installation("cli:ops"), Admin.installation("a")
    created = admin.register(ClientSettings.create(name="job", allowed_scopes=["a"]), by=ops)
    assert created.client_secret is not None
    rotated = admin.rotate_secret(created.client_id, grace=timedelta(hours=1), by=ops, reason="q")
    cid = created.client_id
    admin.revoke_previous_secret(cid, by=a, reason=None)
    admin.suspend(cid, by=a, reason="leak")
    admin.reactivate(cid, by=a, reason=None)
    admin.update(cid, ClientChanges(allowed_scopes=["b"]), by=a, reason=None)
    admin.update(cid, ClientChanges(token_ttl=600), by=a, reason=None)
    admin.update(cid, ClientChanges(quotas=Quotas(tokens_per_minute=10, tokens_per_day=None)), by=a)
    admin.update(cid, ClientChanges(audiences=["https://api.example"]), by=a, reason=None)
    admin.update(cid, ClientChanges(name="job2"), by=a, reason=None)
    admin.revoke_tokens(cid, by=a, cutoff=clock.now(), secret_generation=1, reason=None)
    now = clock.now()
    token = IssuedToken(
        jti="j1",
        client_id=cid,
        scopes=["b"],
        audience=["https://api.example"],
        issued_at=now,
        expires_at=now + timedelta(seconds=600),
        kid="k",
        client_version=9,
        secret_generation=2,
        auth_method="client_secret_basic",
    )
    token.revoke(now=now, actor=cid, reason="done")
    ledger.save(token)
    admin.delete(cid, by=a, reason=None)
    # A private_key_jwt client: registered with public keys, then replaced ones.
    keyed = admin.register(
        ClientSettings.create(name="signer", allowed_scopes=["a"]),
        by=ops,
        auth_method=PRIVATE_KEY_JWT,
        jwks=jwks_of(client_key("RS256")),
    ).client_id
    admin.replace_keys(keyed, jwks_of(client_key("EdDSA")), by=ops, reason="yearly")
    # The server's own signing keys: the first key, then a rotation (which retires it).
    keys = SigningKeyAdmin(ledger, KeyVault(b"k" * 32), clock, "ES256")
    keys.ensure(Path(sqlite_url.removeprefix("sqlite:///")).parent / "no-key-files")
    keys.rotate(delay=timedelta(minutes=10), by=Admin.installation("cli:ops"), reason="quarterly")
    # The ledger: an administrator asks for a checkpoint; the first one makes the ledger key.
    ledger.save(CheckpointRequest(at=clock.now(), actor="cli:ops", reason="audit"))
    tables = LedgerTables(ledger.datastore, postgres=False)
    tables.create()
    LedgerService(
        LedgerBuilder(tables),
        tables,
        LedgerKeyring(ledger, KeyVault(b"k" * 32), clock.now),
        LedgerConfig(origin="auth.example.test/ledger"),
        always_held,
    ).step()
    return ledger, [created.client_secret, rotated.client_secret]


def test_private_key_material_is_never_in_a_registration_or_key_replacement(
    sqlite_url: str,
) -> None:
    ledger, _ = _lifecycle(sqlite_url)
    try:
        messages = [
            cloud_event(ledger.mapper.to_domain_event(n), n.id, SOURCE)
            for n in ledger.read(0, 1000)
        ]
    finally:
        ledger.close()
    keys = [
        jwk
        for m in messages
        if m["type"] in ("keyledger.client.registered.v1", "keyledger.client.keys_replaced.v1")
        for jwk in (m["data"]["jwks"] or [])
    ]
    assert len(keys) == 2
    assert all(not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk) for jwk in keys)


def test_every_event_of_a_real_history_validates_and_carries_no_secret(sqlite_url: str) -> None:
    ledger, secrets = _lifecycle(sqlite_url)
    try:
        notifications = list(ledger.read(0, 1000))
        messages = [
            cloud_event(ledger.mapper.to_domain_event(n), n.id, SOURCE, entry_of(n).encoded())
            for n in notifications
        ]
    finally:
        ledger.close()
    assert {m["type"] for m in messages} == set(AUDIT_TYPES.values())
    assert all(
        b64decode(m["ledgerentry"]) == entry_of(n).encoded()
        for m, n in zip(messages, notifications, strict=True)
    )
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for message, notification in zip(messages, notifications, strict=True):
        schema = json.loads((SCHEMAS / f"{message['type']}.json").read_text())
        jsonschema.validate(message, schema, format_checker=checker)
        assert message["sequence"] == str(notification.id)
        text = json.dumps(message)
        assert "hmac-sha256" not in text
        assert not any(secret in text for secret in secrets)
    client_messages = [m for m in messages if m["type"].startswith("keyledger.client.")]
    registered = {m["subject"] for m in messages if m["type"] == "keyledger.client.registered.v1"}
    assert len(registered) == 2
    about_clients = [
        m for m in messages if m["type"].startswith(("keyledger.client.", "keyledger.token."))
    ]
    assert {m["subject"] for m in about_clients} == registered  # each names a registered client
    key_messages = [m for m in messages if m["type"].startswith("keyledger.signing_keys.")]
    assert all("sealed_private_key" not in m["data"] for m in key_messages)
    assert client_messages[0]["data"]["actor"] == "cli:ops"


def test_an_events_id_is_the_same_every_time_it_is_published(sqlite_url: str) -> None:
    ledger, _ = _lifecycle(sqlite_url)
    try:
        events = [ledger.mapper.to_domain_event(n) for n in ledger.read(0, 1000)]
        again = [ledger.mapper.to_domain_event(n) for n in ledger.read(0, 1000)]
    finally:
        ledger.close()
    ids = [audit_event_id(e) for e in events]
    assert ids == [audit_event_id(e) for e in again]
    assert len(set(ids)) == len(ids)


def test_the_committed_alert_schema_is_the_one_the_code_generates() -> None:
    committed = json.loads((SCHEMAS / f"{ALERT_TYPE}.json").read_text())
    assert committed == alert_schema(), "run `make schemas` and commit the result"
