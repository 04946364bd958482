"""`keyledger ledger verify | export`: audit the event store's history against its checkpoints.

Both read the store directly and need no server, no key-encryption key and no pepper: an
auditor with read access to the database (or only an export) and the ledger's public key can
run them anywhere.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from api.cli import options as o
from api.cli.output import CliError, emit, emit_json

if TYPE_CHECKING:
    from adapters.event_store import Ledger
    from api.usecases.ledger_verification import VerificationReport

READS_STORE = (
    "Reads the event store at --database-url (default: KEYLEDGER_DATABASE_URL); needs no "
    "server and no installation secrets."
)


@click.group(
    short_help="The verifiable ledger: verify history against checkpoints, export it.",
    help="The Merkle tree over every event, its signed checkpoints and their proofs.",
)
def ledger() -> None:
    pass


def _database_url(given: str | None) -> str:
    if given:
        return given
    from api.settings import Settings

    return Settings.from_env().database_url


@contextmanager
def _store(database_url: str) -> Iterator[Ledger]:
    from adapters.event_store import Ledger, NotInstalled

    try:
        store = Ledger(database_url, create=False)
    except NotInstalled as exc:
        raise CliError(str(exc)) from None
    try:
        yield store
    finally:
        store.close()


database_url_option = click.option(
    "--database-url",
    metavar="URL",
    help="The event store to read (default: KEYLEDGER_DATABASE_URL, else the default store).",
)


@ledger.command(
    help="Recompute the tree from the events and check every checkpoint against it. "
    + READS_STORE
    + " Exit status 1 when anything differs.",
    epilog=o.example(
        "keyledger ledger verify --key 'auth.example.com/ledger+1a2b3c4d+AcW...'",
        "keyledger ledger verify --export history.jsonl --checkpoint kept.note --key ...",
    ),
)
@database_url_option
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="VERIFIER_KEY",
    help="A ledger public key as name+keyid+base64 (GET /ledger/keys); repeatable. "
    "Without one, the store's own keys are used, which proves less.",
)
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint note kept elsewhere; repeatable.",
)
@click.option(
    "--export",
    "export_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Recompute from this export instead of the store.",
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def verify(
    database_url: str | None,
    keys: tuple[str, ...],
    checkpoint_files: tuple[Path, ...],
    export_file: Path | None,
    as_json: bool,
) -> None:
    from adapters.ledger_signer import ed25519_verify
    from adapters.ledger_sources import ExportEntries, ExportError, StoreEntries
    from api.usecases.ledger_verification import verify_ledger
    from domain.checkpoint import CheckpointError, NoteKey

    try:
        verifier_keys = [NoteKey.decode(k) for k in keys]
    except CheckpointError as exc:
        raise CliError(f"--key: {exc}") from None
    notes = [(str(p), p.read_text(encoding="utf-8")) for p in checkpoint_files]
    url = None if export_file is not None and database_url is None else database_url
    try:
        if url is None and export_file is not None:
            report = verify_ledger(ExportEntries(export_file), notes, verifier_keys, ed25519_verify)
        else:
            with _store(_database_url(url)) as store:
                tables = _tables(store)
                stored = [
                    (f"stored checkpoint {c.size}", c.note) for c in tables.checkpoints(limit=10**9)
                ]
                if not verifier_keys:
                    verifier_keys = _store_keys(store)
                    click.echo(
                        "note: no --key given: trusting the store's own ledger keys", err=True
                    )
                source: Any = ExportEntries(export_file) if export_file else StoreEntries(store)
                report = verify_ledger(
                    source, [*stored, *notes], verifier_keys, ed25519_verify, recorded=tables
                )
    except ExportError as exc:
        raise CliError(str(exc)) from None
    _show(report, as_json)
    if not report.ok:
        sys.exit(1)


def _tables(store: Ledger) -> Any:
    from api.bootstrap import ledger_tables

    tables = ledger_tables(store)
    tables.create()
    return tables


def _store_keys(store: Ledger) -> list[Any]:
    from eventsourcing.application import AggregateNotFoundError

    from adapters.ledger_signer import note_key
    from domain.ledger_keys import LEDGER_KEYS_ID

    try:
        keys: Any = store.repository.get(LEDGER_KEYS_ID)
    except AggregateNotFoundError:
        return []
    return [note_key(k) for k in keys.keys]


def _show(report: VerificationReport, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "events": report.events,
                "recorded_size": report.recorded_size,
                "checkpoints": [dataclasses.asdict(c) for c in report.checkpoints],
                "difference": dataclasses.asdict(report.difference) if report.difference else None,
                "problems": report.problems,
            }
        )
        return
    emit(f"events: {report.events}, tree records {report.recorded_size or 0} leaves")
    for check in report.checkpoints:
        size = "?" if check.size is None else check.size
        detail = f" ({check.detail})" if check.detail else ""
        emit(f"checkpoint {size} from {check.source}: {check.status}{detail}")
    if report.difference is not None:
        d = report.difference
        emit(f"first difference at index {d.index} (position {d.position}): {d.kind}: {d.detail}")
    for problem in report.problems:
        emit(f"problem: {problem}")
    emit("verified: the store matches every checkpoint" if report.ok else "NOT VERIFIED")


@ledger.command(
    help="Write every event (position, identity, topic, stored state) as JSON Lines, for "
    "`ledger verify --export` elsewhere. " + READS_STORE,
    epilog=o.example("keyledger ledger export --output history.jsonl"),
)
@database_url_option
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The file to write (default: standard output).",
)
def export(database_url: str | None, output: Path | None) -> None:
    from adapters.ledger_sources import write_export

    with _store(_database_url(database_url)) as store:
        if output is None:
            count = write_export(store, sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as out:
                count = write_export(store, out)
    click.echo(f"exported {count} events", err=True)
