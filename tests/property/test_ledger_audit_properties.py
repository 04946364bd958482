"""`ledger verify` names the first change to a recorded log, whatever the change and where."""

from __future__ import annotations

import uuid
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from domain.ledger import LedgerEntry
from domain.ledger_audit import Recorded, first_difference, leaves_of


def history(count: int) -> list[LedgerEntry]:
    """Events at positions 10, 20, 30...: gaps, as a PostgreSQL sequence leaves them."""
    return [
        LedgerEntry.of(
            10 * (i + 1), uuid.UUID(int=i % 5), i, "domain.token:IssuedToken.Issued", b"%d" % i
        )
        for i in range(count)
    ]


def recorded(entries: list[LedgerEntry]) -> Recorded:
    return Recorded(b"".join(leaves_of(entries)), [e.position for e in entries])


def found(tree: Recorded, entries: list[LedgerEntry]) -> tuple[str, int] | None:
    difference = first_difference(tree, entries, leaves_of(entries))
    return None if difference is None else (difference.kind, difference.index)


logs = st.integers(3, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 2)))


@given(st.integers(0, 60))
def test_an_untouched_log_has_no_difference(count: int) -> None:
    events = history(count)
    assert found(recorded(events), events) is None


@given(st.integers(1, 60), st.data())
def test_events_appended_after_the_recorded_tree_are_no_difference(
    count: int, data: st.DataObject
) -> None:
    events = history(count)
    size = data.draw(st.integers(0, count))
    assert found(recorded(events[:size]), events) is None


@given(logs)
def test_a_changed_state_is_named_modified_at_its_index(log: tuple[int, int]) -> None:
    count, k = log
    events = history(count)
    tampered = [*events[:k], replace(events[k], state_hash=b"\x00" * 32), *events[k + 1 :]]
    assert found(recorded(events), tampered) == ("modified", k)


@given(logs)
def test_a_removed_event_is_named_deleted_at_its_index(log: tuple[int, int]) -> None:
    count, k = log
    events = history(count)
    assert found(recorded(events), [*events[:k], *events[k + 1 :]]) == ("deleted", k)


@given(logs)
def test_an_event_slipped_into_a_gap_is_named_inserted_at_its_index(log: tuple[int, int]) -> None:
    count, k = log
    events = history(count)
    forged = LedgerEntry.of(
        events[k].position - 5, uuid.uuid4(), 1, "domain.client:Client.Registered", b"x"
    )
    assert found(recorded(events), [*events[:k], forged, *events[k:]]) == ("inserted", k)


@given(logs)
def test_an_event_inserted_by_renumbering_the_rest_is_named_inserted(log: tuple[int, int]) -> None:
    count, k = log
    events = history(count)
    moved = [replace(e, position=e.position + 1_000_000) for e in events[k:]]
    forged = LedgerEntry.of(
        events[k].position, uuid.uuid4(), 1, "domain.client:Client.Registered", b"x"
    )
    assert found(recorded(events), [*events[:k], forged, *moved]) == ("inserted", k)


@given(logs, st.data())
def test_two_swapped_events_are_named_reordered_at_the_first(
    log: tuple[int, int], data: st.DataObject
) -> None:
    count, k = log
    j = data.draw(st.integers(k + 1, count - 1))
    events = history(count)
    swapped = list(events)
    swapped[k] = replace(events[j], position=events[k].position)
    swapped[j] = replace(events[k], position=events[j].position)
    assert found(recorded(events), swapped) == ("reordered", k)


@given(logs)
def test_a_cut_tail_is_named_truncated_where_the_log_now_ends(log: tuple[int, int]) -> None:
    count, k = log
    events = history(count)
    assert found(recorded(events), events[:k]) == ("truncated", k)
