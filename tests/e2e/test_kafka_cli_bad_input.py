"""Bad input to the Kafka, detection and quota commands and settings: exit 1, one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.server import cli, cli_json, environment, free_port, serve


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("alerts", "list", "--rule", "bogus"), "unknown rule 'bogus'"),
        (("alerts", "list", "--since", "yesterday"), "not an RFC 3339 time"),
    ],
)
def test_bad_alert_queries_are_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log"):
        done = cli(env, *args)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert message in done.stderr


@pytest.mark.parametrize("value", ["0", "-5", "100000001"])
def test_an_out_of_range_quota_is_refused_and_records_nothing(tmp_path: Path, value: str) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log"):
        client_id = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
        before = cli_json(env, "clients", "history", client_id["client_id"])
        done = cli(env, "clients", "set-quota", client_id["client_id"], "--per-minute", value)
        after = cli_json(env, "clients", "history", client_id["client_id"])
    assert done.returncode == 1
    assert "quota per minute must be 1 to" in done.stderr
    assert after == before


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("KEYLEDGER_KAFKA_IDEMPOTENCE", "maybe", "KEYLEDGER_KAFKA_IDEMPOTENCE must be one of"),
        ("KEYLEDGER_DETECT_SPIKE_ALPHA", "2", "KEYLEDGER_DETECT_SPIKE_ALPHA must be"),
        ("KEYLEDGER_DETECT_BRUTE_FORCE_FAILURES", "0", "KEYLEDGER_DETECT_* threshold"),
        ("KEYLEDGER_ABUSE_FAILURE_BURST", "-1", "KEYLEDGER_ABUSE_FAILURE_BURST"),
        ("KEYLEDGER_AUDIT_TOPIC_PARTITIONS", "0", "partitions"),
        ("KEYLEDGER_EMBEDDED_BROKER_PORT", "70000", "KEYLEDGER_EMBEDDED_BROKER_PORT"),
    ],
)
def test_bad_kafka_and_detection_settings_stop_the_commands_with_the_variable_named(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    env = environment(
        f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", install=False, **{variable: value}
    )
    for command in (("relay", "status"), ("projections", "status")):
        done = cli(env, *command)
        assert done.returncode == 1
        assert message in done.stderr


def test_projections_status_on_a_new_installation_counts_only_its_set_up(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys")
    rows = json.loads(cli(env, "projections", "status", "--json").stdout)
    # Installation.Initialised, SigningKeys.Started and KeyGenerated: only the relay follows them.
    assert {(r["name"], r["lag_events"], r["head"]) for r in rows} == {
        ("clients", 0, 3),
        ("revoked-tokens", 0, 3),
        ("analytics", 0, 3),
        ("audit-relay", 3, 3),
    }
