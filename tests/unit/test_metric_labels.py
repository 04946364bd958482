"""Metric labels stay bounded: which clients get series of their own, and status classes."""

from __future__ import annotations

import pytest

from adapters.metrics import OTHER, ClientLabelPolicy, ClientLabels, status_class
from api.settings import Settings, SettingsError


def labels(setting: str) -> ClientLabels:
    return ClientLabels(ClientLabelPolicy.parse(setting), rank_every=3600)


def test_top_n_gives_series_to_the_n_busiest_clients_at_a_ranking_and_other_to_the_rest() -> None:
    top = labels("top:2")
    for client, tokens in {"quiet": 1, "busy": 5, "busier": 9, "middling": 3}.items():
        for _ in range(tokens):
            assert top.issued(client) == OTHER  # nobody has a place before the first ranking
    top.rank()
    assert [top.issued(c) for c in ("busier", "busy", "middling", "quiet")] == [
        "busier",
        "busy",
        OTHER,
        OTHER,
    ]


def test_a_client_keeps_its_series_when_others_become_busier() -> None:
    top = labels("top:1")
    top.issued("early")
    top.rank()
    for _ in range(100):
        top.issued("late")
    top.rank()
    assert (top.of("early"), top.of("late")) == ("early", OTHER)


def test_free_places_go_to_clients_seen_after_the_first_ranking() -> None:
    top = labels("top:3")
    top.issued("a")
    top.rank()
    top.issued("b")
    top.rank()
    assert {top.of(c) for c in ("a", "b", "c")} == {"a", "b", OTHER}


def test_no_more_than_n_clients_ever_get_a_series() -> None:
    top = labels("top:5")
    seen = set()
    for round_ in range(20):
        for client in range(50):
            seen.add(top.issued(f"client-{client}-{round_ % 3}"))
        top.rank()
    assert len(seen - {OTHER}) == 5


def test_all_labels_every_client_at_once_and_off_none() -> None:
    assert labels("all").issued("x") == "x"
    off = labels("off")
    off.issued("x")
    off.rank()
    assert off.of("x") == OTHER


@pytest.mark.parametrize("value", ["top:0", "top:1001", "top", "top:-1", "top:2x", "some", "TOP:3"])
def test_a_client_label_setting_that_is_not_off_all_or_top_n_names_the_variable(
    value: str,
) -> None:
    with pytest.raises(SettingsError, match="KEYLEDGER_METRICS_CLIENT_LABELS"):
        Settings.from_env({"KEYLEDGER_METRICS_CLIENT_LABELS": value})


def test_the_default_gives_series_to_the_twenty_busiest_clients() -> None:
    assert Settings.from_env({}).client_labels == ClientLabelPolicy("top", 20)


@pytest.mark.parametrize("port", ["-1", "65536"])
def test_a_metrics_port_outside_the_tcp_range_names_the_variable(port: str) -> None:
    with pytest.raises(SettingsError, match="KEYLEDGER_METRICS_PORT"):
        Settings.from_env({"KEYLEDGER_METRICS_PORT": port})


@pytest.mark.parametrize(
    ("status", "label"), [(200, "2xx"), (201, "2xx"), (302, "3xx"), (401, "4xx"), (503, "5xx")]
)
def test_the_latency_histogram_labels_a_status_by_its_class(status: int, label: str) -> None:
    assert status_class(status) == label
