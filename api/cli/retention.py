"""`keyledger retention run`: archive, then remove, the months of token events past retention.

Runs on the installation (it reads KEYLEDGER_DATABASE_URL, KEYLEDGER_TOKEN_EVENT_RETENTION and
KEYLEDGER_ARCHIVE_DIR); needs no server, no key-encryption key and no pepper.
"""

from __future__ import annotations

import dataclasses

import click

from api.cli import options as o
from api.cli.ledger import _database_url, _store, database_url_option
from api.cli.output import CliError, emit, emit_json

ACTOR = "keyledger retention run"


@click.group(
    short_help="Token-event retention: archive and remove old months of tokens.",
    help="Token events leave the live store a month of tokens at a time, once every token of "
    "the month has been expired for KEYLEDGER_TOKEN_EVENT_RETENTION days: archived first "
    "(see `keyledger archive`), the removal recorded as an event naming the archive, then "
    "removed. Client, key and trust events are never removed.",
)
def retention() -> None:
    pass


@retention.command(
    help="Archive and remove every month of token events past retention, oldest first; "
    "finish a removal an earlier run left midway. Waits for no one: a month whose events a "
    "follower (the audit relay, a read model, the ledger's tree) still owes stays, and the "
    "command says which (exit status 1); so does a month whose table holds events its archive "
    "does not, which stays while the others go on. One run at a time across replicas.",
    epilog=o.example(
        "keyledger retention run --dry-run",
        "keyledger retention run --archives /mnt/archives",
    ),
)
@database_url_option
@click.option(
    "--archives",
    "--archive-dir",  # its first name, when it took directories only
    "archives",
    metavar="DIR|S3URL",
    help="Where the archives go: a directory or s3://bucket/prefix (default: "
    "KEYLEDGER_ARCHIVE_URL, else KEYLEDGER_ARCHIVE_DIR).",
)
@click.option("--dry-run", is_flag=True, help="say what would go; change nothing")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def run(database_url: str | None, archives: str | None, dry_run: bool, as_json: bool) -> None:
    from adapters.token_archives import ArchiveError
    from adapters.token_event_rows import SingleTable
    from api.bootstrap import token_retention
    from api.settings import Settings
    from api.usecases.token_retention import AnotherRunner, ClocksDisagree, FollowersBehind

    settings = Settings.from_env()
    with _store(_database_url(database_url)) as store:
        runner = token_retention(store, settings, archives)
        if dry_run:
            try:
                planned = runner.plan()
            except ClocksDisagree as exc:
                raise CliError(str(exc)) from None
            if as_json:
                emit_json({"would_remove": [dataclasses.asdict(p) for p in planned]})
                return
            for p in planned:
                again = " (recorded by an earlier run; finishing it)" if p.recorded else ""
                emit(
                    f"would remove {p.period}: removable since {p.removable_since:%Y-%m-%d}{again}"
                )
            if not planned:
                days = settings.token_event_retention
                emit(f"nothing to remove: no month of tokens is {days} days past expiry")
            return
        try:
            result = runner.run(ACTOR)
        except (ClocksDisagree, AnotherRunner, FollowersBehind, ArchiveError, SingleTable) as exc:
            raise CliError(str(exc)) from None
    if as_json:
        emit_json(dataclasses.asdict(result))
    else:
        for r in result.removed:
            emit(
                f"removed {r.period}: {r.removed} events of {r.tokens} tokens, "
                f"archived in {r.archive}"
            )
        for h in result.held_back:
            emit(f"held {h.period} back: {h.reason}")
        if not result.removed and not result.held_back:
            emit("nothing removed")
    if result.held_back:
        raise SystemExit(1)


@retention.command(
    "partition-store",
    short_help="Move a PostgreSQL store made before partitioning to the partitioned layout.",
    help="A PostgreSQL store created before token events were partitioned keeps one events "
    "table, which retention refuses (it would have to DELETE from it). This moves every event "
    "into the partitioned layout at its own position, in one transaction that holds the table "
    "exclusively: stop every server, relay and detector first, and expect minutes per tens of "
    "millions of events. Nothing changes if it fails.",
    epilog=o.example("keyledger retention partition-store --yes"),
)
@database_url_option
@o.yes
def partition_store(database_url: str | None, yes: bool) -> None:
    from adapters.named_lock import sqlite_path
    from adapters.postgres_partitioning import (
        AlreadyPartitioned,
        NoEventsTable,
        partition_single_table,
    )
    from api.cli.output import confirm

    url = _database_url(database_url)
    if sqlite_path(url) is not None:
        raise CliError("a SQLite store has no partitions: retention removes from it in batches")
    confirm(
        "move every event of this store into the partitioned layout (stop servers first)", yes=yes
    )
    with _store(url) as store:
        try:
            table = getattr(store.recorder, "events_table_name", "keyledger_events")
            moved = partition_single_table(store.datastore, table)
        except (AlreadyPartitioned, NoEventsTable) as exc:
            raise CliError(str(exc)) from None
    emit(f"moved {moved} events into the partitioned layout")
