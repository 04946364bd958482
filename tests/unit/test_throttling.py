"""Throttling failed authentications: keyed token buckets (issue 6, part 8)."""

from __future__ import annotations

import pytest

from domain.throttling import FailureThrottle, TokenBuckets


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
