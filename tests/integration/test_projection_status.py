"""`keyledger projections status` (issue 7, part 1, first half)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.projection_tables import clients_table
from api.bootstrap import relay_name
from api.settings import Settings
from api.usecases.projection_status import projection_status
from tests.e2e.server import cli, cli_json, environment
from tests.integration.helpers import register, running


def status(settings: Settings, runtime: object, now: datetime) -> dict[str, dict[str, object]]:
    rows = projection_status(runtime.ledger, relay_name(settings), now)  # type: ignore[attr-defined]
    return {row["name"]: row for row in rows}


async def test_caught_up_projections_have_no_lag_and_the_relay_shows_what_it_owes(
    settings: Settings,
) -> None:
    async with running(settings) as (_, runtime):
        await register(runtime)
        await register(runtime, name="second")
        head = runtime.ledger.head()
        table = clients_table(runtime.ledger.datastore)
        async with asyncio.timeout(5):
            while table.position() < head:  # noqa: ASYNC110 - the follower thread writes it
                await asyncio.sleep(0.02)
        rows = status(settings, runtime, datetime.now(UTC) + timedelta(seconds=30))
    assert rows["clients"]["lag_events"] == 0
    assert rows["clients"]["position"] == rows["clients"]["head"] == head
    assert rows["clients"]["lag_seconds"] == 0
    assert rows["revoked-tokens"]["lag_events"] == 0  # no revocation to fold
    assert rows["revoked-tokens"]["head"] == head
    # Kafka is off in this test: the relay has published nothing and owes every event,
    # the oldest of them about 30 s old at the `now` given.
    assert rows["audit-relay"]["lag_events"] == head
    assert 29 <= float(rows["audit-relay"]["lag_seconds"]) <= 60  # type: ignore[arg-type]


def test_the_cli_reports_a_projection_no_server_has_folded_yet(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys")
    cli_json(env, "admin", "bootstrap")  # sets the installation up: no server ever ran
    rows = {
        row["name"]: row for row in json.loads(cli(env, "projections", "status", "--json").stdout)
    }
    assert (rows["clients"]["position"], rows["clients"]["lag_events"]) == (0, 1)  # the admin
    assert rows["clients"]["lag_seconds"] >= 0
    table = cli(env, "projections", "status").stdout
    assert "clients" in table
    assert "audit-relay" in table
