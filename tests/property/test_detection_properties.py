"""The detector's promises over generated audit streams (issue 6, part 6)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.anomaly_detection import Alert, Detector, Thresholds
from tests.detection_streams import failure, issued, rejection

RULES = Thresholds()
CLIENTS = st.sampled_from(["c1", "c2", "c3"])
IPS = st.sampled_from(["192.0.2.7", "198.51.100.1", "2001:db8::1", None])
REASONS = st.sampled_from(
    ["wrong_secret", "unknown_client", "revoked_secret", "expired_secret", "client_suspended"]
)


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Audit messages in event-time order, mixing failures, rejections and issuance."""
    gaps = draw(st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=120))
    at, stream = 0.0, []
    for gap in gaps:
        at += gap
        kind = draw(st.sampled_from(["failure", "failure", "rejection", "issued"]))
        if kind == "failure":
            stream.append(failure(at, draw(CLIENTS), draw(IPS), draw(REASONS), 1))
        elif kind == "rejection":
            stream.append(rejection(at, draw(CLIENTS)))
        else:
            stream.append(issued(at, draw(CLIENTS), draw(IPS)))
    return stream


def alerts_of(stream: list[dict[str, Any]], detector: Detector | None = None) -> list[Alert]:
    detector = detector or Detector(RULES)
    return [a for m in stream for a in detector.observe(m)]


@settings(max_examples=200)
@given(streams())
def test_replaying_a_stream_gives_the_same_alerts(stream: list[dict[str, Any]]) -> None:
    assert alerts_of(stream) == alerts_of(stream)


@settings(max_examples=200)
@given(streams(), st.data())
def test_a_restart_from_stored_state_neither_repeats_nor_misses(
    stream: list[dict[str, Any]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(stream)))
    first = Detector(RULES)
    before = alerts_of(stream[:cut], first)
    stored = json.loads(json.dumps(first.state()))  # as the store keeps it
    after = alerts_of(stream[cut:], Detector(RULES, stored))
    assert before + after == alerts_of(stream)


def brute_force_keys(alerts: list[Alert]) -> set[tuple[str, str, Any]]:
    return {(a.subject_kind, a.subject, a.window_start) for a in alerts if a.rule == "brute_force"}


@settings(max_examples=200)
@given(streams(), st.lists(st.tuples(st.floats(0, 3600), CLIENTS, IPS), max_size=40))
def test_adding_failures_never_removes_a_brute_force_alert(
    stream: list[dict[str, Any]], extra: list[tuple[float, str, str | None]]
) -> None:
    more = stream + [failure(at, client, ip) for at, client, ip in extra]
    more.sort(key=lambda m: m["time"])
    assert brute_force_keys(alerts_of(sorted(stream, key=lambda m: m["time"]))) <= brute_force_keys(
        alerts_of(more)
    )


@st.composite
def quiet_streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Streams under every threshold: few failures and rejections per window, steady use."""
    stream = []
    for minute in range(draw(st.integers(1, 30))):
        for client in ("c1", "c2"):
            failures = draw(st.integers(0, RULES.brute_force_failures // 2 - 1))
            stream += [
                failure(minute * 60 + i, client, f"192.0.2.{minute % 200}") for i in range(failures)
            ]
            if minute % 5 == 0:
                stream += [
                    rejection(minute * 60 + i, client)
                    for i in range(draw(st.integers(0, RULES.probe_rejections - 1)))
                ]
            stream += [issued(minute * 60 + 30 + i, client) for i in range(draw(st.integers(1, 5)))]
    return sorted(stream, key=lambda m: m["time"])


@settings(max_examples=100)
@given(quiet_streams())
def test_a_stream_under_every_threshold_raises_nothing(stream: list[dict[str, Any]]) -> None:
    assert alerts_of(stream) == []
