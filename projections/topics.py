"""The Kafka topics keyledger writes, described as an AsyncAPI 3.0 document."""

from __future__ import annotations

from typing import Any

from projections.alert_format import ALERT_TYPE
from projections.audit_format import AUDIT_TYPES, SECURITY_TYPES

AUDIT_TOPIC = "keyledger.audit.v1"
ALERTS_TOPIC = "keyledger.alerts.v1"
KAFKA_BINDING = "0.5.0"


def _message(event_type: str, key: str) -> dict[str, Any]:
    return {
        "name": event_type,
        "title": event_type,
        "contentType": "application/json",
        "payload": {"$ref": f"./{event_type}.json"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": key},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def asyncapi_document() -> dict[str, Any]:
    """The audit topic: every message type, its key, and where it comes from."""
    messages = {
        t: _message(t, "the client id (order is kept per key)") for t in AUDIT_TYPES.values()
    }
    messages.update(
        {
            t: _message(t, "the presented client id, else the source IP")
            for t in SECURITY_TYPES.values()
        }
    )
    refs = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    messages[ALERT_TYPE] = _message(ALERT_TYPE, "the alert's subject: a client id or a source IP")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "keyledger audit stream",
            "version": "1.0.0",
            "description": (
                "Every event keyledger commits (client lifecycle, tokens issued and revoked), "
                "in commit order per client, as CloudEvents 1.0 structured JSON; plus security "
                "observations (failed authentications, rejected token requests), which are "
                "not stored as events. Delivery is at least once: deduplicate by `id`."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "the broker `make run` starts (memory only)",
            }
        },
        "channels": {
            "audit": {
                "address": AUDIT_TOPIC,
                "description": "the audit topic (`KEYLEDGER_AUDIT_TOPIC` renames it)",
                "messages": refs,
                "bindings": {"kafka": {"topic": AUDIT_TOPIC, "bindingVersion": KAFKA_BINDING}},
            },
            "alerts": {
                "address": ALERTS_TOPIC,
                "description": "alerts from `keyledger detect` (`KEYLEDGER_ALERTS_TOPIC`)",
                "messages": {ALERT_TYPE: {"$ref": f"#/components/messages/{ALERT_TYPE}"}},
                "bindings": {"kafka": {"topic": ALERTS_TOPIC, "bindingVersion": KAFKA_BINDING}},
            },
        },
        "operations": {
            "publishAudit": {
                "action": "send",
                "channel": {"$ref": "#/channels/audit"},
                "summary": "the relay publishes each committed event once it is in the store",
                "messages": [{"$ref": f"#/channels/audit/messages/{name}"} for name in refs],
            },
            "publishAlerts": {
                "action": "send",
                "channel": {"$ref": "#/channels/alerts"},
                "summary": "the detector publishes each alert once its state is stored",
                "messages": [{"$ref": f"#/channels/alerts/messages/{ALERT_TYPE}"}],
            },
        },
        "components": {"messages": messages},
    }
