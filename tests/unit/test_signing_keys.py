"""The `SigningKeys` aggregate and the vault that seals its private keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.installation import InstallationSecretError, read_secrets
from adapters.key_vault import KeyVault, KeyVaultError
from adapters.signing import SigningKey, generate_key
from api.settings import Settings, SettingsError
from domain.signing_keys import (
    MAX_PREPUBLICATION,
    TOKEN_LIFETIME_BOUND,
    InvalidKeyTurn,
    SigningKeyRejected,
    SigningKeys,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEAD = timedelta(minutes=10)


def add(keys: SigningKeys, kid: str, activates_at: datetime, now: datetime) -> None:
    keys.add_key(
        kid=kid,
        alg="ES256",
        public_jwk={"kty": "EC", "kid": kid},
        sealed_private_key="sealed",
        activates_at=activates_at,
        now=now,
        actor="t",
    )


def started() -> SigningKeys:
    keys = SigningKeys(at=T0)
    add(keys, "a", T0, T0)
    return keys


def test_a_new_key_is_pending_until_its_activation_then_signs_and_its_predecessor_retires() -> None:
    keys = started()
    add(keys, "b", T0 + LEAD, T0)
    assert keys.active_at(T0 + LEAD - timedelta(seconds=1)).kid == "a"  # type: ignore[union-attr]
    assert keys.active_at(T0 + LEAD).kid == "b"  # type: ignore[union-attr]
    a = next(k for k in keys.keys if k.kid == "a")
    assert a.retires_at == T0 + LEAD
    assert a.unpublished_at == T0 + LEAD + TOKEN_LIFETIME_BOUND
    assert [k.status(T0) for k in keys.keys] == ["active", "pending"]
    assert [k.status(T0 + LEAD) for k in keys.keys] == ["retired", "active"]
    assert [k.status(a.unpublished_at) for k in keys.keys] == ["unpublished", "active"]


def test_a_second_rotation_waits_for_the_pending_one() -> None:
    keys = started()
    add(keys, "b", T0 + LEAD, T0)
    with pytest.raises(SigningKeyRejected, match="already waiting"):
        add(keys, "c", T0 + 2 * LEAD, T0 + timedelta(minutes=1))
    add(keys, "c", T0 + 3 * LEAD, T0 + 2 * LEAD)  # once b signs, rotating again is fine
    assert keys.active_at(T0 + 3 * LEAD).kid == "c"  # type: ignore[union-attr]


def test_a_key_cannot_start_signing_in_the_past_nor_repeat_a_kid() -> None:
    keys = started()
    with pytest.raises(SigningKeyRejected, match="past"):
        add(keys, "b", T0 - timedelta(seconds=1), T0)
    with pytest.raises(SigningKeyRejected, match="exists already"):
        add(keys, "a", T0 + LEAD, T0)


def test_a_new_key_cannot_be_set_to_sign_more_than_thirty_days_ahead() -> None:
    keys = started()
    with pytest.raises(InvalidKeyTurn, match="within 30 days"):
        add(keys, "b", T0 + MAX_PREPUBLICATION + timedelta(seconds=1), T0)
    add(keys, "b", T0 + MAX_PREPUBLICATION, T0)


def test_rotation_is_due_the_lead_before_the_key_turns_the_rotation_age() -> None:
    keys = started()
    every = timedelta(days=90)
    assert not keys.rotation_due(T0 + every - LEAD - timedelta(seconds=1), every, LEAD)
    assert keys.rotation_due(T0 + every - LEAD, every, LEAD)
    add(keys, "b", T0 + every, T0 + every - LEAD)
    assert not keys.rotation_due(T0 + every - LEAD, every, LEAD)  # one is pending


def test_the_history_replays_to_the_same_keys() -> None:
    keys = started()
    add(keys, "b", T0 + LEAD, T0)
    events = keys.collect_events()
    replayed = None
    for e in events:
        replayed = e.mutate(replayed)
    assert isinstance(replayed, SigningKeys)
    assert replayed.keys == keys.keys


def test_a_sealed_key_opens_with_its_kid_and_the_same_key_encryption_key_only() -> None:
    key = generate_key("EdDSA")
    vault = KeyVault(b"k" * 32)
    sealed = vault.seal(key.kid, key.private_key)
    assert "PRIVATE KEY" not in sealed
    assert SigningKey.from_private_key(vault.open(key.kid, sealed)).kid == key.kid
    with pytest.raises(KeyVaultError, match="cannot be opened"):
        vault.open("another-kid", sealed)
    with pytest.raises(KeyVaultError, match="cannot be opened"):
        KeyVault(b"x" * 32).open(key.kid, sealed)


@pytest.mark.parametrize("configured", ["short", "!!!not base64!!!", "a" * 60])
def test_a_key_encryption_key_that_is_not_32_base64_bytes_is_refused(
    configured: str, tmp_path: Path
) -> None:
    with pytest.raises(InstallationSecretError, match="32 bytes"):
        read_secrets(tmp_path, configured, None, create=True)


@pytest.mark.parametrize("seconds", ["-1", str(int(MAX_PREPUBLICATION.total_seconds()) + 1)])
def test_a_configured_pre_publication_delay_is_zero_to_thirty_days(seconds: str) -> None:
    with pytest.raises(SettingsError, match="KEYLEDGER_KEY_PREPUBLISH_SECONDS 0 to 2592000"):
        Settings.from_env({"KEYLEDGER_KEY_PREPUBLISH_SECONDS": seconds})
