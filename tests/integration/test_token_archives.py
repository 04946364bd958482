"""Issue 17, archives: a month of token events written out of a real store (SQLite and
PostgreSQL) exactly as stored, verified against its manifest, and loaded back at its own
positions; an interrupted archive counts for nothing and a damaged one says where."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.event_store import Ledger
from adapters.ledger_sources import stored_rows
from adapters.token_archives import ArchiveDirectory, ArchiveError, Row, file_names
from adapters.token_event_rows import PositionTaken, TokenEventRows
from api.bootstrap import ledger_tables
from api.cli.main import cli
from domain.signing_keys import SigningKeys
from domain.token import IssuedToken, token_id
from domain.token_periods import TokenPeriod
from tests.integration.token_history import token

NOVEMBER = TokenPeriod(2026, 11)
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def rows_of(ledger: Ledger) -> TokenEventRows:
    tables = ledger_tables(ledger)
    return TokenEventRows(ledger.datastore, postgres=tables._postgres, events_table=tables._events)


def fill(ledger: Ledger, november: int) -> list[IssuedToken]:
    """`november` tokens issued in November (every third revoked), others around them: one
    issued the last millisecond of October, one the first of December, an older token with
    a UUIDv4 jti issued in November, and the signing keys."""
    tokens = [token(NOVEMBER.start + timedelta(minutes=7 * n + 1)) for n in range(november)]
    for n, kept in enumerate(tokens):
        if n % 3 == 0:
            kept.revoke(now=kept.issued_at + timedelta(minutes=1), actor="test", reason=None)
    outside = [
        token(NOVEMBER.start - timedelta(milliseconds=1)),
        token(NOVEMBER.end),
        token(NOVEMBER.start + timedelta(days=3), jti=str(uuid.uuid4())),
    ]
    keys = SigningKeys(at=NOW)  # an event that is no token's
    ledger.save(*tokens[: november // 2], *outside, keys, *tokens[november // 2 :])
    return tokens


def test_an_archive_holds_the_periods_token_events_exactly_as_stored(
    ledger: Ledger, tmp_path: Path
) -> None:
    tokens = fill(ledger, 30)
    manifest = ArchiveDirectory(tmp_path).write(NOVEMBER, rows_of(ledger).period(NOVEMBER), NOW)
    stored = {(_uuid(r[1]), r[2]): r for r in stored_rows(ledger_tables(ledger))}
    archived = list(ArchiveDirectory(tmp_path).rows(NOVEMBER))
    expected = sorted(key for key in stored if key[0] in {t.id for t in tokens})
    assert [(r[1], r[2]) for r in archived] == expected
    for row in archived:
        position, _, _, topic, state = stored[(row[1], row[2])]
        assert (row[0], row[3], row[4]) == (position, topic, state)
    assert (manifest.events, manifest.tokens) == (40, 30)
    assert manifest.first_position == min(r[0] for r in archived)
    assert manifest.last_position == max(r[0] for r in archived)
    assert ArchiveDirectory(tmp_path).verify(NOVEMBER) == (manifest, [])


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def test_an_archive_loads_back_at_its_own_positions(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 12)
    archives = ArchiveDirectory(tmp_path)
    archives.write(NOVEMBER, rows_of(ledger).period(NOVEMBER), NOW)
    before = list(stored_rows(ledger_tables(ledger)))
    archived = list(archives.rows(NOVEMBER))
    removed = _remove(ledger, archived)  # as retention will

    assert rows_of(ledger).restore(archives.rows(NOVEMBER)) == (removed, 0)
    assert list(stored_rows(ledger_tables(ledger))) == before
    again = ledger.repository.get(token_id(str(archived[0][1])))
    assert again.revoked_at is not None  # the token's history, both events
    assert rows_of(ledger).restore(archives.rows(NOVEMBER)) == (0, removed)


def _remove(ledger: Ledger, rows: list[Row]) -> int:
    tables = ledger_tables(ledger)
    postgres = tables._postgres
    statement = (
        f"DELETE FROM {tables._events} WHERE originator_id = "  # noqa: S608
        + ("%s AND originator_version = %s" if postgres else "? AND originator_version = ?")
    )
    with ledger.datastore.transaction(commit=True) as curs:
        for _, token, version, _, _ in rows:
            curs.execute(statement, (token if postgres else token.hex, version))
    return len(rows)


def test_an_archive_loads_into_a_new_store_with_the_cli(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 5)
    archives = ArchiveDirectory(tmp_path / "archives")
    archives.write(NOVEMBER, rows_of(ledger).period(NOVEMBER), NOW)
    investigation = f"sqlite:///{tmp_path}/investigation.db"
    manifest = tmp_path / "archives" / file_names(NOVEMBER)[1]
    result = CliRunner().invoke(
        cli, ["archive", "load", str(manifest), "--database-url", investigation, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"period": "2026-11", "restored": 7, "already_there": 0}
    other = Ledger(investigation)
    try:
        loaded = [
            (r[0], uuid.UUID(r[1]), r[2], r[3], r[4]) for r in stored_rows(ledger_tables(other))
        ]
    finally:
        other.close()
    assert loaded == sorted(archives.rows(NOVEMBER))


def test_a_position_holding_another_event_stops_a_load_and_writes_nothing(
    ledger: Ledger, tmp_path: Path
) -> None:
    fill(ledger, 4)
    archives = ArchiveDirectory(tmp_path)
    archives.write(NOVEMBER, rows_of(ledger).period(NOVEMBER), NOW)
    [first, *rest] = list(archives.rows(NOVEMBER))
    _remove(ledger, rest)
    moved = (first[0], uuid.uuid4(), 1, first[3], first[4])
    _remove(ledger, [first])
    rows_of(ledger).restore([moved])  # another event now holds the first position
    with pytest.raises(PositionTaken, match=f"position {first[0]} holds"):
        rows_of(ledger).restore(archives.rows(NOVEMBER))
    assert [r[1] for r in rows_of(ledger).period(NOVEMBER)] == []  # nothing of the batch


def test_an_interrupted_archive_has_no_manifest_and_counts_for_nothing(
    ledger: Ledger, tmp_path: Path
) -> None:
    fill(ledger, 6)

    def breaks() -> Iterator[Row]:
        yield from list(rows_of(ledger).period(NOVEMBER))[:3]
        raise ConnectionError("the store went away")

    archives = ArchiveDirectory(tmp_path)
    with pytest.raises(ConnectionError):
        archives.write(NOVEMBER, breaks(), NOW)
    assert archives.manifest(NOVEMBER) is None
    manifest, problems = archives.verify(NOVEMBER)
    assert manifest is None
    assert problems == [f"{file_names(NOVEMBER)[1]} is missing: no complete archive of 2026-11"]
    with pytest.raises(ArchiveError):
        list(archives.rows(NOVEMBER))


def test_a_damaged_archive_says_which_lines_differ(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 6)
    archives = ArchiveDirectory(tmp_path)
    archives.write(NOVEMBER, rows_of(ledger).period(NOVEMBER), NOW)
    data = tmp_path / file_names(NOVEMBER)[0]
    lines = gzip.decompress(data.read_bytes()).splitlines(keepends=True)
    edited = json.loads(lines[4])
    edited["topic"] = "forged"
    lines[4] = (json.dumps(edited, separators=(",", ":")) + "\n").encode()
    data.write_bytes(gzip.compress(b"".join(lines)))

    _, problems = archives.verify(NOVEMBER)
    assert problems[0].startswith(f"{data.name}: SHA-256 ")
    assert "lines 2-9 differ from the manifest (block 1)" in problems
    result = CliRunner().invoke(cli, ["archive", "verify", str(data)])
    assert result.exit_code == 1
    assert "lines 2-9 differ from the manifest (block 1)" in result.stdout
    with pytest.raises(ArchiveError, match="block 1"):
        list(archives.rows(NOVEMBER))


def test_a_truncated_archive_says_after_which_line_it_breaks(
    ledger: Ledger, tmp_path: Path
) -> None:
    fill(ledger, 300)
    archives = ArchiveDirectory(tmp_path)
    archives.write(NOVEMBER, rows_of(ledger).period(NOVEMBER), NOW)
    data = tmp_path / file_names(NOVEMBER)[0]
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    _, problems = archives.verify(NOVEMBER)
    assert any("the compressed stream breaks after line" in p for p in problems), problems


def test_the_cli_writes_and_verifies_an_archive(database_url: str, tmp_path: Path) -> None:
    store = Ledger(database_url)
    try:
        fill(store, 3)
    finally:
        store.close()
    written = CliRunner().invoke(
        cli,
        ["archive", "write", "2026-11", "--to", str(tmp_path), "--database-url", database_url],
    )
    assert written.exit_code == 0, written.output
    assert written.stdout.strip() == "archived 4 events of 2026-11"
    checked = CliRunner().invoke(
        cli, ["archive", "verify", str(tmp_path / file_names(NOVEMBER)[1])]
    )
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.strip() == "verified: 4 events of 3 tokens, 2026-11"


def test_a_period_is_a_month_as_yyyy_mm(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["archive", "write", "2026-13", "--to", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a month between 1970-01 and 9998-12" in result.output


def test_an_archive_is_not_written_over_unless_asked(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 3)
    archives = ArchiveDirectory(tmp_path)
    first = archives.write(NOVEMBER, rows_of(ledger).period(NOVEMBER), NOW)
    with pytest.raises(ArchiveError, match="an archive of 2026-11 exists"):
        archives.write(NOVEMBER, iter([]), NOW)
    assert archives.verify(NOVEMBER) == (first, [])
    again = archives.write(NOVEMBER, rows_of(ledger).period(NOVEMBER), NOW, replace=True)
    assert again.sha256 == first.sha256  # the same events, the same bytes
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
