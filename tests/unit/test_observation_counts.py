"""Failed requests are counted, not multiplied: one observation per source, client, reason and
endpoint per second, carrying a count that the detection rules add up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.anomaly_detection import Detector, Thresholds
from domain.oauth_errors import InvalidClient, InvalidScope
from domain.observations import (
    MAX_CLIENT_IDS_PER_SOURCE,
    ObservationTally,
    SecurityObservation,
)
from projections.audit_format import security_event
from tests.detection_streams import failure

T0 = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)


def observed(
    at: float,
    *,
    client: str | None = "c1",
    ip: str | None = "192.0.2.7",
    reason: str = "wrong_secret",
    agent: str = "curl/8",
) -> SecurityObservation:
    observation = SecurityObservation.of_error(
        InvalidClient(reason=reason),
        endpoint="/oauth2/token",
        at=T0 + timedelta(seconds=at),
        client_id=client,
        auth_method="client_secret_basic",
        source_ip=ip,
        user_agent=agent,
    )
    assert observation is not None
    return observation


def tallied(observations: list[SecurityObservation], capacity: int = 1000) -> list[Any]:
    tally = ObservationTally(capacity)
    for observation in observations:
        assert tally.add(observation)
    return tally.drain()


def test_n_failures_from_one_source_in_one_second_are_one_observation_counting_n() -> None:
    merged = tallied([observed(0.01 * i, agent=f"agent-{i}") for i in range(50)])
    assert len(merged) == 1
    (one,) = merged
    assert one.count == 50
    assert one.at == T0
    assert one.last_seen == T0 + timedelta(seconds=0.49)
    assert one.user_agent == "agent-0"  # the first request's details stay
    data = security_event(one, "id", "https://auth.example.test")["data"]
    assert (data["count"], data["first_seen"], data["last_seen"]) == (
        50,
        T0.isoformat(),
        (T0 + timedelta(seconds=0.49)).isoformat(),
    )


def test_each_second_source_client_and_reason_is_counted_apart() -> None:
    merged = tallied(
        [
            observed(0.1),
            observed(0.2),
            observed(1.1),
            observed(0.3, client="c2"),
            observed(0.4, ip="198.51.100.1"),
            observed(0.5, reason="unknown_client"),
        ]
    )
    assert [m.count for m in merged] == [2, 1, 1, 1, 1]


def test_different_errors_of_one_client_are_not_merged() -> None:
    scope = SecurityObservation.of_error(
        InvalidScope(reason="scope_not_allowed"),
        endpoint="/oauth2/token",
        at=T0,
        client_id="c1",
        auth_method="client_secret_basic",
        source_ip="192.0.2.7",
        user_agent=None,
    )
    assert scope is not None
    assert len(tallied([observed(0), scope])) == 2


def test_random_client_ids_from_one_source_do_not_multiply_observations() -> None:
    merged = tallied([observed(0, client=f"made-up-{i}") for i in range(1000)])
    named = [m for m in merged if m.client_id is not None]
    assert len(named) == MAX_CLIENT_IDS_PER_SOURCE
    (rest,) = [m for m in merged if m.client_id is None]
    assert rest.count == 1000 - MAX_CLIENT_IDS_PER_SOURCE
    assert sum(m.count for m in merged) == 1000


def test_a_full_tally_refuses_a_new_key_but_keeps_counting_known_ones() -> None:
    tally = ObservationTally(capacity=2)
    assert tally.add(observed(0, ip="198.51.100.1"))
    assert tally.add(observed(0, ip="198.51.100.2"))
    assert not tally.add(observed(0, ip="198.51.100.3"))
    assert tally.add(observed(0.5, ip="198.51.100.1"))
    assert [m.count for m in tally.drain()] == [2, 1]
    assert len(tally) == 0


def messages(stream: list[SecurityObservation]) -> list[dict[str, Any]]:
    return [security_event(o, f"id-{i}", "https://a.test") for i, o in enumerate(stream)]


def alerts_of(stream: list[dict[str, Any]]) -> list[tuple[str, str, str, datetime, int]]:
    detector = Detector(Thresholds())
    return [
        (a.rule, a.subject_kind, a.subject, a.window_start, a.threshold)
        for m in stream
        for a in detector.observe(m)
    ]


def test_brute_force_fires_from_aggregated_messages_as_it_did_from_single_ones() -> None:
    # 15 failures for one client from 3 addresses in 3 seconds: 15 single messages, or 9.
    requests = [observed(s + 0.1 * i, ip=f"192.0.2.{i % 3}") for s in range(3) for i in range(5)]
    single = messages(requests)
    aggregated = messages([m for s in range(3) for m in tallied(requests[s * 5 : s * 5 + 5])])
    assert len(aggregated) == 9
    assert sum(m["data"]["count"] for m in aggregated) == 15
    assert alerts_of(aggregated) == alerts_of(single) == [("brute_force", "client", "c1", T0, 10)]


def test_a_message_with_count_50_counts_as_50_failures() -> None:
    message = failure(0)
    message["data"]["count"] = 50
    (alert,) = Detector(Thresholds()).observe(message)
    assert (alert.rule, alert.subject, alert.count) == ("brute_force", "c1", 50)


def test_a_message_without_a_count_counts_once() -> None:
    detector = Detector(Thresholds(brute_force_failures=2))
    assert detector.observe(failure(0, ip=None)) == []
    assert [a.count for a in detector.observe(failure(1, ip=None))] == [2]


def test_a_nonsensical_count_counts_once() -> None:
    for count in (0, -5, "50", True, None):
        message = failure(0, ip=None)
        message["data"]["count"] = count
        assert Detector(Thresholds(brute_force_failures=2)).observe(message) == []
