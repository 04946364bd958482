"""deploy/monitoring: the alerting rules pass Prometheus's own promtool (Debian's `prometheus`
package) and their unit tests, every dashboard query is PromQL promtool accepts, and the
compose Prometheus configuration loads them. (That every metric they name exists is
tests/e2e/test_monitoring_metrics_exist.py, against real processes.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.monitoring_files import (
    DASHBOARDS,
    MONITORING,
    RULE_TESTS,
    RULES,
    as_promql,
    dashboard_expressions,
    metric_names,
    rule_expressions,
)


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: make test installs Debian's prometheus package"
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_alerting_rules_pass_promtool_check_rules() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in checked.stdout


def test_the_alerting_rules_pass_their_promtool_unit_tests() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_rules_watch_relay_lag_queue_saturation_5xx_key_rotation_detector_lag_auth_spikes() -> None:
    watched = {name: metric_names(expr) for name, expr in rule_expressions().items()}
    for metric in (
        "keyledger_relay_lag_seconds",
        "keyledger_event_store_write_queue_depth",
        "keyledger_http_request_duration_seconds_count",
        "keyledger_signing_key_rotation_seconds",
        "keyledger_detector_consumer_lag_messages",
        "keyledger_authentication_failures_total",
    ):
        assert any(metric in names for names in watched.values()), metric


def test_every_alert_has_a_unit_test_in_which_it_fires() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case.get("alert_rule_test", [])
        if check.get("exp_alerts")
    }
    assert set(rule_expressions()) - fired == set()


def test_every_dashboard_query_is_promql_promtool_accepts(tmp_path: Path) -> None:
    queries = dashboard_expressions()
    assert len(queries) >= 20
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": as_promql(expr)}
                    for i, expr in enumerate(queries.values())
                ],
            }
        ]
    }
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", "queries.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_shows_tokens_latency_errors_failures_relay_queue_detector_and_keys() -> None:
    shown = set().union(*(metric_names(expr) for expr in dashboard_expressions().values()))
    assert {
        "keyledger_tokens_issued_total",
        "keyledger_http_request_duration_seconds_bucket",
        "keyledger_http_request_duration_seconds_count",
        "keyledger_authentication_failures_total",
        "keyledger_relay_lag_seconds",
        "keyledger_event_store_write_queue_depth",
        "keyledger_detector_consumer_lag_messages",
        "keyledger_signing_key_age_seconds",
    } <= shown


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_queries_the_datasource_the_viewer_picks(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["templating"]["list"][0] == {
        **dashboard["templating"]["list"][0],
        "name": "datasource",
        "type": "datasource",
        "query": "prometheus",
    }
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_the_compose_prometheus_configuration_loads_the_rules() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout


def test_metric_names_skip_functions_keywords_labels_strings_and_durations() -> None:
    expr = (
        'sum by (le) (rate(a_bucket{route="/x(", le=~"1"}[5m] offset 1h)) > 1e3 '
        "and on (job) b unless ignoring (instance) c:rate5m / histogram_quantile(0.5, d)"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c:rate5m", "d"}
