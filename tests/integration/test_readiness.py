"""/readyz tells the truth about the background loops (issue 15, part 4).

A signing-keys follower that failed ten times a second used to leave the server "ready";
now any failing loop makes /readyz answer 503 naming it, is logged once (not on every
retry), and readiness comes back when the loop recovers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.settings import Settings
from tests.integration.helpers import running


async def readiness(http: Any) -> tuple[int, dict[str, Any]]:
    response = await http.get("/readyz")
    return response.status_code, response.json()


async def test_a_failing_signing_keys_follower_makes_the_server_not_ready_until_it_recovers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(settings) as (http, runtime):
        assert (await readiness(http))[0] == 200
        assert runtime.key_keeper is not None
        ledger = runtime.ledger

        def broken(after_version: int) -> list[Any]:
            raise RuntimeError("a different key-encryption key sealed it")

        monkeypatch.setattr(ledger, "signing_key_events", broken)
        async with asyncio.timeout(5):
            while (answer := await readiness(http))[0] == 200:  # noqa: ASYNC110 - a thread
                await asyncio.sleep(0.02)
        status, body = answer
        assert (status, body["status"]) == (503, "failing")
        assert "a different key-encryption key" in body["failing"]["signing-keys follower"]
        await asyncio.sleep(0.3)  # several more failed retries
        failures = [r for r in caplog.records if "is failing" in r.getMessage()]
        assert len(failures) == 1

        monkeypatch.undo()
        async with asyncio.timeout(5):
            while (answer := await readiness(http))[0] != 200:  # noqa: ASYNC110 - a thread
                await asyncio.sleep(0.02)
        assert answer[1]["failing"] == {}
        assert any("recovered" in r.getMessage() for r in caplog.records)


async def test_a_ready_server_names_no_failing_loop(settings: Settings) -> None:
    async with running(settings) as (http, _):
        status, body = await readiness(http)
        assert (status, body["status"], body["failing"]) == (200, "ready", {})
