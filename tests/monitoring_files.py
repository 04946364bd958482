"""deploy/monitoring as the tests read it: the rules' and dashboards' PromQL, and the metric
names it uses (a small tokenizer, not a PromQL parser: promtool checks the syntax)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "prometheus-rules.yaml"
RULE_TESTS = MONITORING / "prometheus-rules.test.yaml"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))

KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w$.:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()")


def rule_expressions() -> dict[str, str]:
    """Each alert's (or recording rule's) name and its expression."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in groups
        for rule in group["rules"]
    }


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_expressions() -> dict[str, str]:
    """Each dashboard query, named `<dashboard file>: <panel title> <refId>`."""
    found = {}
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in _panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                found[f"{path.name}: {panel['title']} {target['refId']}"] = target["expr"]
    return found


def as_promql(expr: str) -> str:
    """A dashboard query with Grafana's interval variables given a value."""
    return re.sub(r"\$__(?:rate_)?interval|\$__range", "5m", expr)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions,
    keywords, label names (inside `{}` or `by (...)`), strings, durations or numbers."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = _GROUPING.sub("", text)
    text = re.sub(r"\boffset\s+-?\w+", "", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in KEYWORDS}
