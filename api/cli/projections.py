"""`keyledger projections status | rebuild | copies | drop-copy`: the read models, on the
installation itself (the event store is read and written directly)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from api.cli import options as o
from api.cli.ledger import archives_option
from api.cli.output import confirm, emit, emit_ids, emit_json, table
from api.cli.services import local, settings_here

if TYPE_CHECKING:
    from adapters.event_store import Ledger
    from api.usecases.projection_rebuild import Progress as ProgressCallback
    from api.usecases.projection_rebuild import RebuildReport


@click.group(
    short_help="Read models: lag, rebuilds, copies (on the installation).",
    help=f"The read models: their lag, rebuilds and point-in-time copies. {o.LOCAL}",
)
def projections() -> None:
    pass


@contextmanager
def open_ledger_here() -> Iterator[Ledger]:
    """The event store named by the environment, for one command."""
    from api.bootstrap import open_ledger, prepare

    settings = settings_here()
    prepare(settings)
    ledger = open_ledger(settings)
    try:
        yield ledger
    finally:
        ledger.close()


@contextmanager
def progress_bar(description: str) -> Iterator[ProgressCallback]:
    """A bar on stderr: log position reached of the head, events/s, elapsed and ETA. It is
    drawn from the first update on, so a request refused before any work draws none."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} events/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=Console(stderr=True))
    task = bar.add_task(description, total=None, rate="-")
    started = time.perf_counter()

    def update(done: int, head: int) -> None:
        if not bar.live.is_started:
            bar.start()
        elapsed = time.perf_counter() - started
        rate = f"{done / elapsed:,.0f}" if elapsed > 0 else "-"
        bar.update(task, completed=done, total=max(head, 1), rate=rate)

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


@projections.command(
    short_help="Each projection's position and lag.",
    help="Each projection's position, the log's head, and the lag in events and seconds. "
    + o.LOCAL,
    epilog=o.example("keyledger projections status", "keyledger projections status --json"),
)
@o.as_json
@o.quiet
@local
def status(as_json: bool, quiet: bool) -> None:
    from api.bootstrap import relay_name
    from api.usecases.projection_status import projection_status

    with open_ledger_here() as ledger:
        rows = projection_status(ledger, relay_name(settings_here()), datetime.now(UTC))
    if as_json:
        emit_json(rows)
    elif quiet:
        emit_ids(r["name"] for r in rows)
    else:
        cells = [
            [r["name"], r["position"], r["head"], r["lag_events"], f"{r['lag_seconds']:.1f}"]
            for r in rows
        ]
        table(["projection", "position", "head", "lag (events)", "lag (s)"], cells)


def _say(report: RebuildReport, as_json: bool) -> None:
    if as_json:
        emit(json.dumps(report.to_dict() | {"events_per_second": round(report.rate)}))
        return
    folded = (
        f"{report.events:,} events folded into {report.records:,} records in "
        f"{report.seconds:.2f} s ({report.rate:,.0f} events/s)"
    )
    if report.copy:
        emit(f"copy {report.copy}: {report.projection} as of {report.until}, {folded}")
        emit(f"table {report.table}; list it: keyledger clients list --as-of-copy {report.copy}")
    else:
        emit(f"rebuilt {report.projection}: {folded}")
        emit(f"swapped in as {report.table}, at position {report.position:,}")


@projections.command(
    short_help="Replay a read model, or copy it as of a moment.",
    help="Replay a read model (clients, revoked-tokens or analytics) from the first event into "
    "fresh tables and swap them in; with --until, build a named copy as of that moment instead. "
    + o.LOCAL,
    epilog=o.example(
        "keyledger projections rebuild clients",
        "keyledger projections rebuild clients --until 2026-11-20T10:00Z",
    ),
)
@click.argument("name")
@click.option("--until", metavar="RFC3339", help="a point-in-time copy, e.g. 2026-11-20T10:00Z")
@archives_option
@o.as_json
@local
def rebuild(name: str, until: str | None, archives: str | None, as_json: bool) -> None:
    from api.bootstrap import archived_events
    from api.usecases.projection_rebuild import copy_until
    from api.usecases.projection_rebuild import rebuild as replay
    from api.usecases.timestamps import parse_rfc3339

    moment = parse_rfc3339(until) if until else None
    with open_ledger_here() as ledger:
        archived = archived_events(ledger, archives)
        if moment is None:
            with progress_bar(f"rebuilding {name}") as progress:
                report = replay(ledger, name, progress, archived)
        else:
            with progress_bar(f"copying {name} as of {moment.isoformat()}") as progress:
                report = copy_until(ledger, name, moment, datetime.now(UTC), progress, archived)
    _say(report, as_json)


@projections.command(
    short_help="The point-in-time copies.",
    help=f"The point-in-time copies. {o.LOCAL}",
    epilog=o.example("keyledger projections copies", "keyledger projections copies -q"),
)
@o.as_json
@o.quiet
@local
def copies(as_json: bool, quiet: bool) -> None:
    from api.usecases.projection_rebuild import copies as made

    with open_ledger_here() as ledger:
        rows = made(ledger)
    if as_json:
        emit_json(rows)
    elif quiet:
        emit_ids(r["name"] for r in rows)
    else:
        cells = [
            [r["name"], r["projection"], r["until_time"], r["records"], r["table_name"]]
            for r in rows
        ]
        table(["copy", "projection", "as of", "records", "table"], cells, ids=["copy", "table"])


@projections.command(
    "drop-copy",
    short_help="Delete a point-in-time copy (asks first).",
    help=f"Delete a point-in-time copy (irreversible: asks first). {o.LOCAL}",
    epilog=o.example("keyledger projections drop-copy clients@20261120T100000Z --yes"),
)
@click.argument("name")
@o.yes
@local
def drop_copy(name: str, yes: bool) -> None:
    from api.usecases.projection_rebuild import drop_copy as drop

    confirm(f"drop the copy {name}", yes=yes)
    with open_ledger_here() as ledger:
        drop(ledger, name)
    emit(f"dropped {name}")
