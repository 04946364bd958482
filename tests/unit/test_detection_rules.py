"""Each detection rule on a hand-built stream (issue 6)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from api.bootstrap import thresholds
from api.settings import Settings
from domain.anomaly_detection import Alert, Detector, Thresholds
from domain.networks import source_network
from tests.detection_streams import T0, failure, issued, rejection

RULES = Thresholds()


def run(stream: list[dict[str, Any]], thresholds: Thresholds = RULES) -> list[Alert]:
    detector = Detector(thresholds)
    return [alert for message in stream for alert in detector.observe(message)]


def test_ten_failures_for_one_client_in_a_minute_raise_one_brute_force_alert() -> None:
    stream = [failure(i, ip=f"198.51.100.{i}") for i in range(15)]
    alerts = run(stream)
    assert [(a.rule, a.subject_kind, a.subject) for a in alerts] == [
        ("brute_force", "client", "c1")
    ]
    alert = alerts[0]
    assert alert.count == 10
    assert alert.evidence == tuple(m["id"] for m in stream[:10])
    assert alert.window_start == T0
    assert alert.first_seen == T0
    assert alert.severity == "high"


def test_failures_from_one_ip_across_clients_raise_a_brute_force_alert_for_the_ip() -> None:
    alerts = run([failure(i, client=f"c{i}") for i in range(10)])
    assert [(a.subject_kind, a.subject) for a in alerts] == [("source_ip", "192.0.2.7")]


def test_nine_failures_a_minute_raise_nothing() -> None:
    stream = [failure(i * 60 + s, ip=None) for i in range(5) for s in range(9)]
    assert run(stream) == []


def test_a_new_window_can_alert_again() -> None:
    stream = [failure(s, ip=None) for s in range(10)] + [
        failure(60 + s, ip=None) for s in range(10)
    ]
    assert [a.window_start.minute for a in run(stream)] == [0, 1]


def test_one_use_of_a_retired_secret_alerts_with_its_generation() -> None:
    alerts = run([failure(0, reason="revoked_secret", generation=3, ip=None)])
    assert [(a.rule, a.secret_generation, a.severity) for a in alerts] == [
        ("retired_secret_use", 3, "high")
    ]


def test_repeated_scope_rejections_are_scope_probing() -> None:
    stream = [rejection(i, error="invalid_scope" if i % 2 else "invalid_target") for i in range(6)]
    alerts = run(stream)
    assert [(a.rule, a.count) for a in alerts] == [("scope_probing", 5)]


def test_requests_from_a_suspended_or_deleted_client_alert_once_per_window() -> None:
    stream = [failure(i, reason="client_suspended", ip=None) for i in range(3)]
    stream.append(failure(3, reason="client_deleted", ip=None))
    assert [a.rule for a in run(stream)] == ["inactive_client_use"]


def test_fifty_times_the_usual_issuance_is_a_spike() -> None:
    usual = [issued(minute * 60 + s) for minute in range(10) for s in range(0, 60, 20)]  # 3/min
    burst = [issued(600 + i * 0.1) for i in range(200)]
    alerts = run(usual + burst)
    assert [a.rule for a in alerts] == ["issuance_spike"]
    assert alerts[0].count == 151  # the first token over 50 x a baseline of 3 a minute
    assert alerts[0].threshold == 151


def test_a_busy_client_at_its_usual_rate_raises_no_spike() -> None:
    steady = [issued(minute * 60 + s * 0.2) for minute in range(20) for s in range(250)]
    assert run(steady) == []


def test_a_new_client_cannot_spike_before_it_has_history() -> None:
    assert run([issued(i * 0.01) for i in range(500)]) == []


def test_a_client_from_a_new_network_after_learning_alerts_once() -> None:
    day = RULES.network_learning
    stream = [issued(0, ip="192.0.2.7"), issued(10, ip="192.0.2.99")]  # same /24
    stream += [issued(day + 1, ip="203.0.113.5"), issued(day + 2, ip="203.0.113.6")]
    alerts = run(stream)
    assert [(a.rule, a.summary) for a in alerts] == [
        ("new_source_network", "first token from 203.0.113.0/24")
    ]


def test_new_networks_during_learning_are_learnt_not_alerted() -> None:
    assert run([issued(0, ip="192.0.2.7"), issued(60, ip="203.0.113.5")]) == []


def test_source_networks_are_slash_24_and_slash_64() -> None:
    assert source_network("192.0.2.77") == "192.0.2.0/24"
    assert source_network("2001:db8:1:2:3::9") == "2001:db8:1:2::/64"
    assert source_network("not-an-ip") is None


def test_messages_without_a_time_are_ignored() -> None:
    assert Detector(RULES).observe({"type": "keyledger.token.issued.v1"}) == []


def test_one_client_hammered_from_one_address_is_one_alert_not_two() -> None:
    alerts = run([failure(i) for i in range(50)])
    assert [(a.rule, a.subject_kind) for a in alerts] == [("brute_force", "client")]


def test_every_threshold_is_a_setting() -> None:
    changed = Settings(
        **{
            f"detect_{f.name}": (getattr(RULES, f.name) * 2 if f.name != "spike_alpha" else 0.5)
            for f in fields(Thresholds)
        }
    )
    made = thresholds(changed)
    for f in fields(Thresholds):
        assert getattr(made, f.name) != getattr(RULES, f.name), f.name
