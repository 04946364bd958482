"""`keyledger archive write | verify | load`: a month of token events outside the live store.

An archive is what retention removes, kept (adapters/token_archives.py): the period's token
events exactly as stored, with a manifest of counts, positions and SHA-256 hashes. These
commands read or write the store directly and need no server and no installation secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from api.cli import options as o
from api.cli.ledger import _database_url, _store, database_url_option
from api.cli.output import CliError, emit, emit_json

if TYPE_CHECKING:
    from adapters.event_store import Ledger
    from adapters.token_archives import Archives
    from adapters.token_event_rows import TokenEventRows
    from domain.token_periods import TokenPeriod

T = TypeVar("T")


@click.group(
    short_help="Token-event archives: write, verify, load.",
    help="A period's token events (the month, UTC, their tokens were issued in) kept outside "
    "the live store: compressed JSON Lines and a manifest of counts, positions and SHA-256 "
    "hashes. Each command reads or writes files and the store directly; no server needed.",
)
def archive() -> None:
    pass


def _period(name: str) -> TokenPeriod:
    from domain.token_periods import NotAPeriod, TokenPeriod

    try:
        return TokenPeriod.named(name)
    except NotAPeriod as exc:
        raise click.BadParameter(str(exc)) from None


def _located(path: str) -> tuple[Archives, TokenPeriod]:
    """The archives and period of an archive named by either of its files (a path, or an
    s3://bucket/prefix/... URL)."""
    from adapters.token_archives import NotAnArchiveFile, archive_file
    from domain.token_periods import NotAPeriod

    try:
        return _opened(archive_file, path)
    except (NotAnArchiveFile, NotAPeriod) as exc:
        raise click.BadParameter(str(exc)) from None


def _opened(how: Callable[[str], T], where: str) -> T:
    from adapters.token_archives import ArchiveError

    try:
        return how(where)
    except ArchiveError as exc:
        raise CliError(str(exc)) from None


def _removed(store: Ledger, period: TokenPeriod) -> bool:
    from eventsourcing.application import AggregateNotFoundError

    from domain.token_retention import TOKEN_RETENTION_ID

    try:
        record: Any = store.repository.get(TOKEN_RETENTION_ID)
    except AggregateNotFoundError:
        return False
    return record.archive_of(period) is not None


def _rows(store: Ledger) -> TokenEventRows:
    from adapters.named_lock import sqlite_path
    from adapters.token_event_rows import TokenEventRows

    return TokenEventRows(
        store.datastore,
        postgres=sqlite_path(store.database_url) is None,
        events_table=getattr(store.recorder, "events_table_name", "stored_events"),
    )


@archive.command(
    help="Archive the token events of the tokens issued in PERIOD (YYYY-MM) to a directory or "
    "an S3-compatible bucket, "
    "leaving the store as it is. The manifest is written last: a run that stops midway leaves "
    "no manifest, and no archive.",
    epilog=o.example(
        "keyledger archive write 2026-11 --to /var/lib/keyledger/archives",
        "keyledger archive write 2026-11 --to s3://audit-archives/keyledger",
    ),
)
@click.argument("period")
@click.option(
    "--to",
    "where",
    required=True,
    metavar="DIR|S3URL",
    help="The directory to write to (created if missing), or s3://bucket/prefix (credentials, "
    "region and endpoint from the AWS SDK's settings: AWS_ACCESS_KEY_ID, AWS_REGION, "
    "AWS_ENDPOINT_URL_S3...).",
)
@database_url_option
@click.option(
    "--replace",
    is_flag=True,
    help="Write it again over an existing archive of the period (never over the archive of a "
    "period retention removed: that archive is the only copy).",
)
@click.option("--json", "as_json", is_flag=True, help="print the manifest as JSON")
def write(period: str, where: str, database_url: str | None, replace: bool, as_json: bool) -> None:
    from adapters.token_archives import ArchiveError, describe, open_archives

    chosen = _period(period)
    with _store(_database_url(database_url)) as store:
        if _removed(store, chosen):
            raise CliError(
                f"{chosen} was removed from the store by retention: its archive is the only "
                "copy of its events (`keyledger archive load` brings them back)"
            )
        try:
            manifest = _opened(open_archives, where).write(
                chosen, _rows(store).period(chosen), datetime.now(UTC), replace=replace
            )
        except ArchiveError as exc:
            raise CliError(f"{exc} (--replace writes it again)") from None
    _show(describe(manifest), as_json, f"archived {manifest.events} events of {chosen}")


@archive.command(
    help="Check an archive against its manifest: every file present, the SHA-256 of the file "
    "and of each block of 10,000 events, the counts, the order and the period of every event. "
    "Names the lines that differ. Exit status 1 when anything does.",
    epilog=o.example(
        "keyledger archive verify archives/tokens-2026-11.manifest.json",
        "keyledger archive verify s3://audit-archives/keyledger/tokens-2026-11.manifest.json",
    ),
)
@click.argument("path", metavar="PATH|S3URL")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def verify(path: str, as_json: bool) -> None:
    from adapters.token_archives import ArchiveError

    archives, period = _located(path)
    try:
        manifest, problems = archives.verify(period)
    except ArchiveError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        emit_json({"ok": not problems, "period": period.name, "problems": problems})
    else:
        for problem in problems:
            emit(f"problem: {problem}")
        if manifest is not None and not problems:
            emit(f"verified: {manifest.events} events of {manifest.tokens} tokens, {period}")
        else:
            emit("NOT VERIFIED")
    if problems:
        raise SystemExit(1)


@archive.command(
    help="Put an archive's events back into a store at their own positions, for an "
    "investigation: into a new store named with --database-url, or into the store that "
    "removed them (only the very archive its removal recorded, each event at a position "
    "it removed; followers past those positions do not see them again). The archive is "
    "verified first; events already there are skipped; a position holding another event "
    "stops it.",
    epilog=o.example(
        "keyledger archive load archives/tokens-2026-11.manifest.json",
        "keyledger archive load archives/tokens-2026-11.jsonl.gz "
        "--database-url sqlite:///investigation.db",
    ),
)
@click.argument("path", metavar="PATH|S3URL")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="print the counts as JSON")
def load(path: str, database_url: str | None, as_json: bool) -> None:
    from adapters.token_archives import ArchiveError
    from adapters.token_event_rows import PositionTaken
    from api.usecases.archive_load import load_archive

    archives, period = _located(path)
    with _target(database_url) as store:
        try:
            restored, present = load_archive(store, _rows(store), archives, period)
        except (ArchiveError, PositionTaken) as exc:
            raise CliError(f"{path}: {exc}") from None
    _show(
        {"period": period.name, "restored": restored, "already_there": present},
        as_json,
        f"loaded {restored} events of {period} ({present} were already there)",
    )


@contextmanager
def _target(database_url: str | None) -> Iterator[Ledger]:
    """The store to load into: one named with --database-url is created if new (a store for
    the investigation); the configured one must exist."""
    if database_url is None:
        with _store(_database_url(None)) as store:
            yield store
        return
    from adapters.event_store import DatabaseUrlError, Ledger

    try:
        store = Ledger(database_url)
    except DatabaseUrlError as exc:
        raise CliError(str(exc)) from None
    try:
        yield store
    finally:
        store.close()


def _show(value: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        emit_json(value)
    else:
        emit(line)
