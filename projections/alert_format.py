"""Alerts as CloudEvents 1.0 JSON on `keyledger.alerts.v1`, with their JSON Schema."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.anomaly_detection import RULES, SEVERITY, Alert
from projections.audit_format import cloud_event_schema

ALERT_TYPE = "keyledger.alert.raised.v1"


def alert_event(alert: Alert, source: str) -> dict[str, Any]:
    """The alert's message: its id is the alert's (derived from rule, subject and window)."""
    return {
        "specversion": "1.0",
        "id": alert.id,
        "source": source,
        "type": ALERT_TYPE,
        "subject": alert.subject,
        "time": alert.last_seen.isoformat(),
        "datacontenttype": "application/json",
        "data": {k: v for k, v in alert.to_dict().items() if k != "id"},
    }


def alert_message(alert: Alert, source: str) -> tuple[bytes, bytes]:
    """Kafka key (the subject) and value."""
    return alert.subject.encode(), msgspec.json.encode(alert_event(alert, source))


def alert_schema() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time"}
    data = {
        "rule": {"enum": list(RULES)},
        "severity": {"enum": sorted(set(SEVERITY.values()))},
        "subject": {"type": "string"},
        "subject_kind": {"enum": ["client", "source_ip", "ledger"]},
        "window_start": time,
        "window_end": time,
        "first_seen": time,
        "last_seen": time,
        "count": {"type": "integer", "minimum": 1},
        "threshold": {"type": "integer", "minimum": 1},
        "evidence": {
            "type": "array",
            "items": {"type": "string"},
            "description": "ids of the audit messages that are the evidence (at most 50)",
        },
        "summary": {"type": "string"},
        "secret_generation": {"type": ["integer", "null"]},
    }
    return cloud_event_schema(
        ALERT_TYPE,
        "an alert raised by `keyledger detect` from the audit stream",
        required=["specversion", "id", "source", "type", "subject", "time", "data"],
        subject={"type": "string"},
        data=data,
    )
