"""`keyledger projections rebuild | copies | drop-copy`: replays of the read models."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from adapters.event_store import Ledger
from api.bootstrap import open_ledger, prepare
from api.settings import Settings
from api.usecases.projection_rebuild import (
    Progress as ProgressCallback,
)
from api.usecases.projection_rebuild import (
    RebuildReport,
    copies,
    copy_until,
    drop_copy,
    rebuild,
)
from api.usecases.timestamps import parse_rfc3339


@contextmanager
def open_ledger_here() -> Iterator[Ledger]:
    """The event store named by the environment, for one command."""
    settings = Settings.from_env()
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


def _say(args: argparse.Namespace, report: RebuildReport) -> None:
    if args.json:
        print(json.dumps(report.to_dict() | {"events_per_second": round(report.rate)}))
        return
    folded = (
        f"{report.events:,} events folded into {report.records:,} records in "
        f"{report.seconds:.2f} s ({report.rate:,.0f} events/s)"
    )
    if report.copy:
        print(f"copy {report.copy}: {report.projection} as of {report.until}, {folded}")
        print(f"table {report.table}; list it: keyledger clients list --as-of-copy {report.copy}")
    else:
        print(f"rebuilt {report.projection}: {folded}")
        print(f"swapped in as {report.table}, at position {report.position:,}")


def cmd_rebuild(args: argparse.Namespace) -> int:
    until = parse_rfc3339(args.until) if args.until else None
    with open_ledger_here() as ledger:
        if until is None:
            with progress_bar(f"rebuilding {args.name}") as progress:
                report = rebuild(ledger, args.name, progress)
        else:
            with progress_bar(f"copying {args.name} as of {until.isoformat()}") as progress:
                report = copy_until(ledger, args.name, until, datetime.now(UTC), progress)
    _say(args, report)
    return 0


def cmd_copies(args: argparse.Namespace) -> int:
    with open_ledger_here() as ledger:
        rows = copies(ledger)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table("copy", "projection", "as of", "records", "table", box=None)
    for row in rows:
        table.add_row(
            row["name"],
            row["projection"],
            row["until_time"],
            str(row["records"]),
            row["table_name"],
        )
    Console(width=160).print(table)
    return 0


def cmd_drop_copy(args: argparse.Namespace) -> int:
    with open_ledger_here() as ledger:
        drop_copy(ledger, args.name)
    print(f"dropped {args.name}")
    return 0


def add_commands(projections_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rebuild_ = projections_sub.add_parser(
        "rebuild",
        help="replay a read model from the first event into fresh tables and swap them in; "
        "with --until, build a named copy as of that moment instead",
    )
    rebuild_.add_argument("name", help="clients or revoked-tokens")
    rebuild_.add_argument(
        "--until", metavar="RFC3339", help="a point-in-time copy, e.g. 2026-11-20T10:00Z"
    )
    rebuild_.add_argument("--json", action="store_true")
    rebuild_.set_defaults(func=cmd_rebuild)
    copies_ = projections_sub.add_parser("copies", help="the point-in-time copies")
    copies_.add_argument("--json", action="store_true")
    copies_.set_defaults(func=cmd_copies)
    drop = projections_sub.add_parser("drop-copy", help="delete a point-in-time copy")
    drop.add_argument("name")
    drop.set_defaults(func=cmd_drop_copy)
