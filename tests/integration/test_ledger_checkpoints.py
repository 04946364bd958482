"""The ledger folds the real event store into its tree and signs checkpoints that verify."""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from adapters.event_store import Ledger
from adapters.key_vault import KeyVault
from adapters.ledger_signer import ed25519_verify, note_key
from adapters.ledger_store import LedgerTables
from domain.checkpoint import open_checkpoint
from domain.ledger import node_from_tiles
from domain.ledger_keys import LEDGER_KEYS_ID, CheckpointRequest, LedgerCheckpoint, LedgerKeys
from domain.merkle_tree import (
    inclusion_proof,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from projections.ledger import LedgerBuilder, entry_of
from projections.ledger_service import LedgerConfig, LedgerKeyring, LedgerService
from tests.backlog import fill

ORIGIN = "auth.example.test/ledger"


@contextlib.contextmanager
def always_held() -> Iterator[bool]:
    yield True


def service(database_url: str) -> tuple[Ledger, LedgerTables, LedgerService]:
    ledger = Ledger(database_url)
    tables = LedgerTables(ledger.datastore, postgres=database_url.startswith("postgres"))
    tables.create()
    keyring = LedgerKeyring(ledger, KeyVault(os.urandom(32)), lambda: datetime.now(UTC))
    config = LedgerConfig(origin=ORIGIN, checkpoint_interval=3600)
    return (
        ledger,
        tables,
        LedgerService(
            LedgerBuilder(tables, batch=100),
            tables,
            keyring,
            config,
            always_held,
        ),
    )


def leaves(ledger: Ledger) -> list[bytes]:
    return [leaf_hash(entry_of(n).encoded()) for n in ledger.read(0, 1_000_000)]


def the_key(ledger: Ledger) -> object:
    keys: object = ledger.repository.get(LEDGER_KEYS_ID)
    assert isinstance(keys, LedgerKeys)
    assert keys.current is not None
    return note_key(keys.current)


def test_the_tree_over_the_store_has_the_root_of_every_stored_event(database_url: str) -> None:
    fill(database_url, 357)
    ledger, _, ledger_service = service(database_url)
    ledger_service.step()
    assert ledger_service.builder.root() == root_of(leaves(ledger))


def test_a_checkpoint_is_a_signed_note_over_the_tree_that_verifies_with_the_public_key(
    database_url: str,
) -> None:
    fill(database_url, 300)
    ledger, tables, ledger_service = service(database_url)
    signed = ledger_service.step(force=True)
    assert signed is not None
    checkpoint = open_checkpoint(signed.note, the_key(ledger), ed25519_verify)  # type: ignore[arg-type]
    assert checkpoint.origin == ORIGIN
    assert checkpoint.root == root_of(leaves(ledger)[: checkpoint.size])
    ledger_service.step()  # the checkpoint's own event reaches the tree and the table
    assert [c.size for c in tables.checkpoints()] == [checkpoint.size]


def test_each_checkpoint_carries_a_consistency_proof_from_the_one_before(
    database_url: str,
) -> None:
    fill(database_url, 40)
    ledger, _tables, ledger_service = service(database_url)
    ledger_service.step(force=True)
    fill(database_url, 300)
    ledger_service.step()
    second = ledger_service.step(force=True)
    assert second is not None
    events = [ledger.mapper.to_domain_event(n) for n in ledger.read(0, 10_000)]
    signed = [e for e in events if isinstance(e, LedgerCheckpoint.Signed)]
    first_event, second_event = signed
    assert second_event.previous_size == first_event.size
    assert verify_consistency(
        first_event.size,
        second_event.size,
        base64.b64decode(first_event.root),
        base64.b64decode(second_event.root),
        [base64.b64decode(p) for p in second_event.consistency],
    )


def test_an_inclusion_proof_from_the_stored_tiles_verifies_for_any_stored_event(
    database_url: str,
) -> None:
    fill(database_url, 600)
    ledger, tables, ledger_service = service(database_url)
    ledger_service.step()
    all_leaves = leaves(ledger)
    size = len(all_leaves)
    root = root_of(all_leaves)
    for index in (0, 1, 255, 256, 511, size - 1):
        path = inclusion_proof(index, size, lambda lv, i: node_from_tiles(lv, i, tables.tile))
        assert verify_inclusion(all_leaves[index], index, size, path, root)
    positions = [n.id for n in ledger.read(0, 10_000)]
    assert [tables.leaf_index(p) for p in positions[250:260]] == list(range(250, 260))
    assert tables.leaf_index(positions[-1] + 1000) is None


def test_a_request_in_the_log_brings_a_checkpoint_before_the_interval(database_url: str) -> None:
    fill(database_url, 20)
    ledger, _tables, ledger_service = service(database_url)
    ledger_service.step(force=True)
    ledger_service.step()
    assert ledger_service.step() is None  # the interval (an hour) has not passed
    ledger.save(CheckpointRequest(at=datetime.now(UTC), actor="admin-1", reason="audit"))
    assert ledger_service.step() is not None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_tree_whose_stored_tiles_were_rewritten_is_not_signed_over(database_url: str) -> None:
    fill(database_url, 300)
    ledger, _tables, ledger_service = service(database_url)
    ledger_service.step(force=True)
    ledger_service.step()
    with ledger.datastore.transaction(commit=True) as curs:
        curs.execute("UPDATE keyledger_ledger_tiles SET hashes = zeroblob(length(hashes))")
    fill(database_url, 5)
    with pytest.raises(Exception, match="does not extend the checkpoint"):
        ledger_service.step(force=True)


def test_a_store_set_up_before_the_ledger_existed_gets_its_tables_from_the_builder(
    database_url: str,
) -> None:
    fill(database_url, 5)
    ledger = Ledger(database_url)
    tables = LedgerTables(ledger.datastore, postgres=database_url.startswith("postgres"))
    assert not tables.exist()
    builder = LedgerBuilder(tables)
    assert builder.catch_up() == 5
    assert tables.exist()
    assert builder.root() == root_of(leaves(ledger))


def test_a_step_leaves_events_committed_after_its_last_read_to_the_next_step(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady load a step must end, and write the open tiles once, not per batch."""
    fill(database_url, 130)
    _, tables, ledger_service = service(database_url)
    advance = tables.advance
    writes = 0

    def advance_while_tokens_arrive(*args: object, **kwargs: object) -> None:
        nonlocal writes
        advance(*args, **kwargs)  # type: ignore[arg-type]
        writes += 1
        if writes <= 2:  # five more tokens commit after each of the first two batches
            fill(database_url, 5)

    monkeypatch.setattr(tables, "advance", advance_while_tokens_arrive)
    ledger_service.step()
    assert ledger_service.builder.state.size == 135  # 100, then the 35 there when read
    ledger_service.step()
    assert ledger_service.builder.state.size == 140


def test_a_checkpoint_is_listed_by_the_step_that_signs_it(database_url: str) -> None:
    fill(database_url, 30)
    _, tables, ledger_service = service(database_url)
    signed = ledger_service.step(force=True)
    assert signed is not None
    assert [c.size for c in tables.checkpoints()] == [signed.size]
