"""`keyledger ledger verify` names each way a store can be tampered with after a checkpoint.

Each test edits a real SQLite or PostgreSQL store underneath keyledger, as an administrator
with database access could, then runs the command with only the ledger's public key.
"""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from adapters.event_store import Ledger
from adapters.ledger_signer import note_key
from api.cli.main import cli
from domain.ledger_keys import LEDGER_KEYS_ID
from tests.backlog import fill
from tests.integration.test_ledger_checkpoints import service

EVENTS = 300  # more than one leaf tile


def checkpointed(database_url: str) -> str:
    """A store of EVENTS tokens with a signed checkpoint; the ledger's verifier key."""
    fill(database_url, EVENTS)
    ledger, _, ledger_service = service(database_url)
    ledger_service.step(force=True)
    ledger_service.step()
    keys: Any = ledger.repository.get(LEDGER_KEYS_ID)
    return note_key(keys.current).encoded()


def sql(database_url: str, *statements: str) -> None:
    ledger = Ledger(database_url)
    postgres = database_url.startswith("postgres")
    table, position = (
        ("keyledger_events", "notification_id") if postgres else ("stored_events", "rowid")
    )
    with ledger.datastore.transaction(commit=True) as curs:
        for statement in statements:
            curs.execute(
                statement.format(
                    events=table,
                    position=position,
                    kind=", kind" if postgres else "",  # the partition a row belongs in
                    kept=", 0" if postgres else "",
                )
            )


def verify(database_url: str, key: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli, ["ledger", "verify", "--database-url", database_url, "--key", key, "--json"]
    )
    report: dict[str, Any] = json.loads(result.stdout)
    assert result.exit_code == (0 if report["ok"] else 1)
    return report


def difference(report: dict[str, Any]) -> tuple[str, int]:
    assert not report["ok"]
    return report["difference"]["kind"], report["difference"]["index"]


def test_an_untouched_store_verifies_against_its_checkpoint(database_url: str) -> None:
    key = checkpointed(database_url)
    report = verify(database_url, key)
    assert report["ok"], report
    assert [c["status"] for c in report["checkpoints"]] == ["matches"]


def test_a_changed_state_is_named_modified(database_url: str) -> None:
    key = checkpointed(database_url)
    sql(database_url, "UPDATE {events} SET state = state || state WHERE {position} = 100")
    assert difference(verify(database_url, key)) == ("modified", 99)


def test_a_deleted_event_is_named_deleted(database_url: str) -> None:
    key = checkpointed(database_url)
    sql(database_url, "DELETE FROM {events} WHERE {position} = 42")
    assert difference(verify(database_url, key)) == ("deleted", 41)


def test_an_inserted_event_is_named_inserted(database_url: str) -> None:
    key = checkpointed(database_url)
    sql(
        database_url,
        "UPDATE {events} SET {position} = {position} + 1000000 WHERE {position} > 200",
        "INSERT INTO {events} (originator_id, originator_version, topic, state, {position}{kind}) "
        "SELECT '00000000-0000-0000-0000-00000000f0f0', 1, topic, state, 201{kept} "
        "FROM {events} WHERE {position} = 7",
    )
    assert difference(verify(database_url, key)) == ("inserted", 200)


def test_two_swapped_events_are_named_reordered(database_url: str) -> None:
    key = checkpointed(database_url)
    sql(
        database_url,
        "UPDATE {events} SET {position} = -1 WHERE {position} = 10",
        "UPDATE {events} SET {position} = 10 WHERE {position} = 250",
        "UPDATE {events} SET {position} = 250 WHERE {position} = -1",
    )
    assert difference(verify(database_url, key)) == ("reordered", 9)


def test_a_truncated_tail_is_named_truncated(database_url: str) -> None:
    key = checkpointed(database_url)
    sql(database_url, "DELETE FROM {events} WHERE {position} > 280")
    report = verify(database_url, key)
    assert difference(report) == ("truncated", 280)
    assert [c["status"] for c in report["checkpoints"]] == ["beyond-log"]


def test_a_forged_checkpoint_kept_elsewhere_is_refused(database_url: str, tmp_path: Any) -> None:
    key = checkpointed(database_url)
    note = tmp_path / "forged.note"
    stored = Ledger(database_url)
    with stored.datastore.transaction(commit=False) as curs:
        curs.execute("SELECT note FROM keyledger_ledger_checkpoints")
        text = curs.fetchone()["note"]
    note.write_text(text.replace(f"\n{EVENTS}\n", f"\n{EVENTS - 1}\n"), encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        [
            "ledger",
            "verify",
            "--database-url",
            database_url,
            "--key",
            key,
            "--checkpoint",
            str(note),
        ],
    )
    assert result.exit_code == 1
    assert "bad-signature" in result.stdout


def test_an_export_verifies_without_the_store(database_url: str, tmp_path: Any) -> None:
    key = checkpointed(database_url)
    export = tmp_path / "history.jsonl"
    assert (
        CliRunner()
        .invoke(cli, ["ledger", "export", "--database-url", database_url, "--output", str(export)])
        .exit_code
        == 0
    )
    stored = Ledger(database_url)
    with stored.datastore.transaction(commit=False) as curs:
        curs.execute("SELECT note FROM keyledger_ledger_checkpoints")
        (tmp_path / "kept.note").write_text(curs.fetchone()["note"], encoding="utf-8")
    args = ["ledger", "verify", "--export", str(export), "--key", key]
    args += ["--checkpoint", str(tmp_path / "kept.note")]
    assert CliRunner().invoke(cli, args).exit_code == 0
    lines = export.read_text(encoding="utf-8").splitlines()
    edited = lines[50].replace('"topic":"', '"topic":"x', 1)
    export.write_text("\n".join([*lines[:50], edited, *lines[51:]]) + "\n")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "checkpoint 300 from" in result.stdout
    assert "differs" in result.stdout
