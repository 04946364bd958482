"""Issue 17, everything keeps answering: after retention removed months of token events, a
read model replayed from the first event (a rebuild, an as-of copy, a follower on a new
table) reads them back from their archives, so the hourly analytics of those months survive;
an archive that cannot be found stops the replay and says where it looked."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapters.event_store import Ledger
from adapters.ledger_signer import note_key
from adapters.ledger_sources import stored_rows
from adapters.projection_tables import projection_table
from adapters.token_archives import ArchiveDirectory, ArchiveError
from api.bootstrap import archived_events, ledger_audit, ledger_tables, log_with_archives
from api.cli.main import cli
from api.settings import Settings
from api.usecases.analytics import analytics_table
from api.usecases.projection_rebuild import (
    RebuildRefused,
    copy_records,
    copy_until,
    rebuild,
)
from domain.ledger_keys import LEDGER_KEYS_ID
from projections.analytics import ANALYTICS_TOPICS, AnalyticsCodec, AnalyticsView, Bucket
from projections.follower import LogFollower
from tests.integration.test_ledger_checkpoints import service
from tests.integration.token_history import NOW, OLD, fill, retention_at

CODEC = AnalyticsCodec()


def rows_of(records: Any) -> dict[str, str]:
    return {CODEC.key(r): CODEC.to_json(r) for r in records}


def live_rows(ledger: Ledger) -> dict[str, str]:
    return rows_of(analytics_table(ledger).load()[0])


def removed_month_buckets(rows: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in rows.items() if k.split("|")[1][:7] in {p.name for p in OLD}}


def nothing(reached: int, head: int) -> None:
    return None


@pytest.fixture
def removed(ledger: Ledger, settings: Settings, tmp_path: Path) -> dict[str, str]:
    """The analytics rows before two months were removed (archived in tmp_path/archives)."""
    fill(ledger)
    before = live_rows(ledger)
    assert len(removed_month_buckets(before)) == 2 * 6 * 2  # hour, day: 6 clients, 2 months
    runner = retention_at(ledger, settings, tmp_path / "archives")
    assert [r.period for r in runner.run("test").removed] == [p.name for p in OLD]
    return before


def test_a_rebuild_after_a_removal_keeps_the_removed_months_counts(
    ledger: Ledger,
    removed: dict[str, str],
) -> None:
    report = rebuild(ledger, "analytics", nothing, archived_events(ledger))

    assert live_rows(ledger) == removed
    assert report.events > 14  # the archived events were folded again


def test_an_as_of_copy_inside_a_removed_month_counts_its_tokens(
    ledger: Ledger,
    removed: dict[str, str],
) -> None:
    moment = OLD[1].start + timedelta(hours=12)  # three of February's tokens, all of January's

    copy_until(ledger, "analytics", moment, NOW, nothing, archived_events(ledger))

    copy = [r for r in copy_records(ledger, "analytics@20240201T120000Z", "analytics")]
    hours = {r.bucket: r.issued for r in copy if isinstance(r, Bucket) and r.granularity == "hour"}
    assert sum(n for b, n in hours.items() if b.startswith(OLD[0].name)) == 6
    assert sorted(b for b in hours if b.startswith(OLD[1].name)) == [
        "2024-02-01T01",
        "2024-02-01T06",
        "2024-02-01T11",
    ]


def test_a_follower_on_a_new_table_reads_the_archives_from_the_start(
    ledger: Ledger,
    removed: dict[str, str],
) -> None:
    table = projection_table(
        ledger.datastore, "keyledger_analytics_test_new", "analytics-test-new", CODEC
    )
    follower = LogFollower(log_with_archives(ledger), table, AnalyticsView(), ANALYTICS_TOPICS)

    follower.load()

    assert rows_of(table.load()[0]) == removed


def test_a_replay_without_the_archive_stops_and_says_where_it_looked(
    ledger: Ledger,
    removed: dict[str, str],
    tmp_path: Path,
) -> None:
    (tmp_path / "archives").rename(tmp_path / "moved")

    with pytest.raises(RebuildRefused) as lost:
        rebuild(ledger, "analytics", nothing, archived_events(ledger))

    assert f"no archive of 2024-01 in {tmp_path / 'archives'}" in str(lost.value)
    assert "--archives" in str(lost.value)
    assert live_rows(ledger) == removed  # the live table is untouched
    rebuild(ledger, "analytics", nothing, archived_events(ledger, tmp_path / "moved"))
    assert live_rows(ledger) == removed


def test_a_replay_given_no_archives_after_a_removal_is_refused(
    ledger: Ledger,
    removed: dict[str, str],
) -> None:
    with pytest.raises(RebuildRefused, match="retention removed 2024-01, 2024-02 from this"):
        rebuild(ledger, "analytics", nothing)

    assert live_rows(ledger) == removed


def test_a_month_removed_while_a_replay_reads_the_log_stops_the_replay(
    ledger: Ledger,
    settings: Settings,
    tmp_path: Path,
) -> None:
    fill(ledger)
    runner = retention_at(ledger, settings, tmp_path / "archives")

    def remove_once(reached: int, head: int) -> None:
        if reached == 0:
            runner.run("test")

    with pytest.raises(RebuildRefused, match="retention removed 2024-01, 2024-02 while"):
        rebuild(ledger, "analytics", remove_once, archived_events(ledger))


@pytest.fixture
def checkpointed(ledger: Ledger, settings: Settings) -> str:
    """A filled store with a signed checkpoint over every event; the checkpoint key (the
    test removes the months itself)."""
    fill(ledger)
    tree_ledger, _, builder = service(settings.database_url)
    builder.step(force=True)
    builder.step()
    keys: Any = tree_ledger.repository.get(LEDGER_KEYS_ID)
    return note_key(keys.current).encoded()


def test_an_export_after_a_removal_holds_the_archived_events_and_verifies(
    ledger: Ledger,
    settings: Settings,
    checkpointed: str,
    tmp_path: Path,
) -> None:
    before = [(r[0], str(r[1]), r[2]) for r in stored_rows(ledger_tables(ledger))]
    retention_at(ledger, settings, tmp_path / "archives").run("test")
    export = tmp_path / "history.jsonl"
    url = ["--database-url", settings.database_url]

    written = CliRunner().invoke(cli, ["ledger", "export", *url, "--output", str(export)])

    assert written.exit_code == 0, written.output
    lines = [json.loads(line) for line in export.read_text().splitlines()[1:]]
    exported = [(v["position"], str(uuid.UUID(v["originator_id"])), v["version"]) for v in lines]
    assert exported[: len(before)] == [(p, str(uuid.UUID(str(i))), v) for p, i, v in before]
    verified = CliRunner().invoke(
        cli, ["ledger", "verify", *url, "--export", str(export), "--key", checkpointed]
    )
    assert verified.exit_code == 0, verified.output


def test_the_detectors_hourly_ledger_audit_raises_nothing_after_a_removal(
    ledger: Ledger,
    settings: Settings,
    checkpointed: str,
    tmp_path: Path,
) -> None:
    retention_at(ledger, settings, tmp_path / "archives").run("test")
    audit = ledger_audit(settings, ledger)

    assert audit() == []
    (tmp_path / "archives").rename(tmp_path / "moved")
    with pytest.raises(ArchiveError, match="no archive of 2024-01"):
        audit()  # the detector logs it; no tampering is claimed


def test_a_month_loaded_back_is_read_once_not_twice(
    ledger: Ledger,
    settings: Settings,
    checkpointed: str,
    tmp_path: Path,
) -> None:
    counts = live_rows(ledger)
    retention_at(ledger, settings, tmp_path / "archives").run("test")
    for period in OLD:
        archive = tmp_path / "archives" / f"tokens-{period.name}.jsonl.gz"
        url = ["--database-url", settings.database_url]
        loaded = CliRunner().invoke(cli, ["archive", "load", str(archive), *url])
        assert loaded.exit_code == 0, loaded.output

    rebuild(ledger, "analytics", nothing, archived_events(ledger))

    assert live_rows(ledger) == counts
    assert ledger_audit(settings, ledger)() == []


def forged_archive(directory: Path, topic: str, position: int) -> Path:
    """A self-consistent archive of January 2024 whose one event nobody issued."""
    period = OLD[0]
    event_id = uuid.UUID(int=period.id_range()[0].int + 1)
    ArchiveDirectory(directory).write(period, [(position, event_id, 1, topic, b"{}")], NOW)
    return directory / f"tokens-{period.name}.manifest.json"


def load(settings: Settings, manifest: Path, url: str | None = None) -> Any:
    target = url or settings.database_url
    return CliRunner().invoke(cli, ["archive", "load", str(manifest), "--database-url", target])


def test_a_store_takes_back_only_the_archive_its_removal_recorded(
    ledger: Ledger,
    removed: dict[str, str],
    settings: Settings,
    tmp_path: Path,
) -> None:
    head = ledger.head()
    forged = forged_archive(tmp_path / "evil", "domain.client:Client.Registered", head + 3)

    refused = load(settings, forged)

    assert refused.exit_code == 1
    assert "is not the one its removal recorded" in refused.stderr
    assert ledger.head() == head


def test_a_store_that_never_removed_the_month_takes_no_archive_of_it(
    ledger: Ledger,
    settings: Settings,
    tmp_path: Path,
) -> None:
    fill(ledger)
    head = ledger.head()
    forged = forged_archive(tmp_path / "evil", "ti2", head + 3)

    refused = load(settings, forged)

    assert refused.exit_code == 1
    assert "this store never removed 2024-01" in refused.stderr
    assert ledger.head() == head


def test_an_investigation_store_takes_token_events_only(tmp_path: Path) -> None:
    forged = forged_archive(tmp_path / "evil", "domain.client:Client.Registered", 5)
    url = f"sqlite:///{tmp_path / 'investigation.db'}"

    refused = CliRunner().invoke(cli, ["archive", "load", str(forged), "--database-url", url])

    assert refused.exit_code == 1
    assert "position 5: not a token event of 2024-01" in refused.stderr


def test_a_manifest_names_its_own_data_file_only(tmp_path: Path) -> None:
    period = OLD[0]
    manifest = forged_archive(tmp_path / "a", "ti2", 1)
    elsewhere = tmp_path / "elsewhere.jsonl.gz"
    (tmp_path / "a" / "tokens-2024-01.jsonl.gz").rename(elsewhere)
    value = json.loads(manifest.read_text())
    manifest.write_text(json.dumps(value | {"file": str(elsewhere)}))

    _, problems = ArchiveDirectory(tmp_path / "a").verify(period)

    assert problems == [f"the manifest names {str(elsewhere)!r}, not tokens-2024-01.jsonl.gz"]
