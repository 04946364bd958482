"""Throttling failed authentications: keyed token buckets (issue 6, part 8)."""

from __future__ import annotations

import pytest

from domain.throttling import MAX_NETWORKS_PER_CLIENT, FailureThrottle, TokenBuckets


def test_a_key_may_fail_burst_times_then_waits_for_one_token() -> None:
    buckets = TokenBuckets(burst=5, window=60)
    for _ in range(5):
        assert buckets.wait("k", 0.0) is None
        buckets.spend("k", 0.0)
    assert buckets.wait("k", 0.0) == pytest.approx(12.0)  # one token every 60/5 s
    assert buckets.wait("k", 11.9) is not None
    assert buckets.wait("k", 12.0) is None


def test_keys_are_independent() -> None:
    buckets = TokenBuckets(burst=1, window=10)
    buckets.spend("a", 0.0)
    assert buckets.wait("a", 0.0) is not None
    assert buckets.wait("b", 0.0) is None


def test_memory_stays_bounded_and_forgets_refilled_keys_first() -> None:
    buckets = TokenBuckets(burst=2, window=10, max_keys=100)
    for i in range(100):
        buckets.spend(f"old{i}", 0.0)
    buckets.spend("new", 100.0)  # every old bucket has refilled by now
    assert len(buckets._buckets) == 1


def test_an_ip_or_a_client_id_alone_can_throttle() -> None:
    throttle = FailureThrottle(burst=3, window=60)
    for _ in range(3):
        throttle.failed("192.0.2.7", "victim", 0.0)
    assert throttle.wait("192.0.2.7", "someone-else", 0.0) is not None  # the IP
    assert throttle.wait("198.51.100.1", "victim", 0.0) is not None  # the client id
    assert throttle.wait("198.51.100.1", "someone-else", 0.0) is None


def test_usual_networks_are_where_a_client_got_tokens() -> None:
    throttle = FailureThrottle(burst=3, window=60)
    assert throttle.usual("c", "203.0.113.0/24")  # no history yet: anywhere
    throttle.succeeded("c", "192.0.2.0/24")
    assert throttle.usual("c", "192.0.2.0/24")
    assert not throttle.usual("c", "203.0.113.0/24")


def test_a_bucket_refills_at_burst_per_window_from_when_it_was_last_spent() -> None:
    buckets = TokenBuckets(burst=2, window=10)  # one token every 5 s
    buckets.spend("k", 100.0)
    buckets.spend("k", 100.0)
    assert buckets.wait("k", 100.0) == pytest.approx(5.0)
    assert buckets.wait("k", 102.5) == pytest.approx(2.5)  # half a token back
    assert buckets.wait("k", 105.0) is None


def test_an_idle_bucket_holds_no_more_than_burst_tokens() -> None:
    buckets = TokenBuckets(burst=2, window=10)
    buckets.spend("k", 0.0)
    for _ in range(2):
        buckets.spend("k", 1000.0)
    assert buckets.wait("k", 1000.0) == pytest.approx(5.0)


def test_a_full_table_keeps_throttled_keys_and_forgets_refilled_ones() -> None:
    buckets = TokenBuckets(burst=1, window=10, max_keys=3)
    buckets.spend("refilled-1", 0.0)
    buckets.spend("refilled-2", 0.0)
    buckets.spend("throttled", 100.0)
    buckets.spend("new", 100.0)  # the table is full: only refilled buckets make room
    assert buckets.wait("throttled", 100.0) == pytest.approx(10.0)
    assert buckets.wait("new", 100.0) == pytest.approx(10.0)
    assert sorted(buckets._buckets) == ["new", "throttled"]


def test_spending_a_key_already_in_a_full_table_forgets_nothing() -> None:
    buckets = TokenBuckets(burst=2, window=10, max_keys=2)
    buckets.spend("refilled", 0.0)
    buckets.spend("k", 100.0)
    buckets.spend("k", 100.0)
    assert sorted(buckets._buckets) == ["k", "refilled"]


def test_a_full_table_of_throttled_keys_forgets_only_the_least_recently_seen() -> None:
    buckets = TokenBuckets(burst=1, window=10, max_keys=3)
    buckets.spend("a", 0.0)
    buckets.spend("b", 0.0)
    buckets.spend("c", 0.0)
    buckets.spend("a", 0.5)  # seen again: now the most recent
    buckets.spend("d", 1.0)
    assert sorted(buckets._buckets) == ["a", "c", "d"]
    assert buckets.wait("a", 1.0) is not None
    assert buckets.wait("c", 1.0) is not None


def test_a_full_table_drops_keys_that_are_not_throttled_before_throttled_ones() -> None:
    buckets = TokenBuckets(burst=2, window=10, max_keys=3)
    buckets.spend("spent-once", 0.0)
    buckets.spend("throttled", 0.0)
    buckets.spend("throttled", 0.0)
    buckets.spend("spent-once-too", 0.0)
    buckets.spend("new", 0.0)
    assert "throttled" in buckets._buckets
    assert "spent-once" not in buckets._buckets
    assert len(buckets._buckets) <= 3


def test_the_longer_of_the_ip_and_client_waits_is_the_one_answered() -> None:
    throttle = FailureThrottle(burst=1, window=60)
    throttle.failed("192.0.2.7", None, 0.0)
    throttle.failed(None, "victim", 30.0)
    assert throttle.wait("192.0.2.7", "victim", 30.0) == pytest.approx(60.0)
    assert throttle.wait("192.0.2.7", None, 30.0) == pytest.approx(30.0)
    assert throttle.wait(None, None, 30.0) is None


def test_a_failure_without_an_ip_or_client_id_spends_only_the_other() -> None:
    throttle = FailureThrottle(burst=1, window=60)
    throttle.failed(None, "victim", 0.0)
    throttle.failed("192.0.2.7", None, 0.0)
    assert throttle.wait("198.51.100.1", "victim", 0.0) is not None
    assert throttle.wait("192.0.2.7", "someone-else", 0.0) is not None
    assert throttle.wait("198.51.100.1", "someone-else", 0.0) is None


def test_a_success_without_a_network_teaches_nothing() -> None:
    throttle = FailureThrottle(burst=3, window=60)
    throttle.succeeded("c", None)
    assert throttle.usual("c", "203.0.113.0/24")


def test_a_client_learns_at_most_16_usual_networks() -> None:
    throttle = FailureThrottle(burst=3, window=60)
    for i in range(MAX_NETWORKS_PER_CLIENT + 1):
        throttle.succeeded("c", f"10.{i}.0.0/16")
    assert throttle.usual("c", f"10.{MAX_NETWORKS_PER_CLIENT - 1}.0.0/16")
    assert not throttle.usual("c", f"10.{MAX_NETWORKS_PER_CLIENT}.0.0/16")


def test_a_full_table_of_networks_forgets_the_least_recently_seen_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("domain.throttling.MAX_KEYS", 2)
    throttle = FailureThrottle(burst=3, window=60)
    throttle.succeeded("a", "192.0.2.0/24")
    throttle.succeeded("b", "192.0.2.0/24")
    throttle.succeeded("a", "198.51.100.0/24")  # "a" seen again: "b" is now the oldest
    assert not throttle.usual("b", "203.0.113.0/24")  # two clients fit
    throttle.succeeded("c", "192.0.2.0/24")
    assert throttle.usual("b", "203.0.113.0/24")  # forgotten: no history, anywhere goes
    assert not throttle.usual("a", "203.0.113.0/24")
    assert not throttle.usual("c", "203.0.113.0/24")


def test_a_full_table_frees_a_tenth_of_itself_at_once() -> None:
    buckets = TokenBuckets(burst=1, window=10, max_keys=100)
    for i in range(100):
        buckets.spend(f"k{i}", 0.0)
    buckets.spend("new", 0.0)
    assert len(buckets._buckets) == 91


def test_a_key_with_exactly_one_failure_left_goes_before_an_older_throttled_one() -> None:
    buckets = TokenBuckets(burst=2, window=10, max_keys=10)
    buckets.spend("throttled", 0.0)
    buckets.spend("throttled", 0.0)
    buckets.spend("one-left", 0.0)
    for i in range(8):
        buckets.spend(f"t{i}", 0.0)
        buckets.spend(f"t{i}", 0.0)
    buckets.spend("new", 0.0)  # the table was full
    assert "throttled" in buckets._buckets
    assert "one-left" not in buckets._buckets


def test_a_full_table_with_few_unthrottled_keys_goes_on_to_the_least_recently_seen() -> None:
    buckets = TokenBuckets(burst=2, window=10, max_keys=20)
    buckets.spend("one-left", 0.0)  # not throttled, and the least recently seen
    for i in range(19):
        buckets.spend(f"t{i}", 0.0)
        buckets.spend(f"t{i}", 0.0)
    buckets.spend("new", 0.0)
    assert sorted(buckets._buckets) == sorted(["new", *(f"t{i}" for i in range(1, 19))])
