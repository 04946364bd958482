"""Audit messages as the relay and the observation buffer publish them, for detector tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def failure(
    at: float,
    client: str | None = "c1",
    ip: str | None = "192.0.2.7",
    reason: str = "wrong_secret",
    generation: int | None = None,
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "keyledger.security.authentication_failed.v1",
        "time": (T0 + timedelta(seconds=at)).isoformat(),
        "subject": client,
        "data": {
            "reason": reason,
            "client_id": client,
            "source_ip": ip,
            "error": "invalid_client",
            "secret_generation": generation,
        },
    }


def rejection(at: float, client: str = "c1", error: str = "invalid_scope") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "keyledger.security.token_request_rejected.v1",
        "time": (T0 + timedelta(seconds=at)).isoformat(),
        "subject": client,
        "data": {"reason": "scope_not_allowed", "client_id": client, "error": error},
    }


def issued(at: float, client: str = "c1", ip: str | None = "192.0.2.7") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "keyledger.token.issued.v1",
        "time": (T0 + timedelta(seconds=at)).isoformat(),
        "subject": client,
        "sequence": "1",
        "data": {"client_id": client, "source_ip": ip},
    }
