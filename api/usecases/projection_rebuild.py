"""`keyledger projections rebuild`: replay a read model from the first event into a fresh
table and swap it in, or build a named copy as of a past moment.

Serving processes keep answering from their in-memory models (and go on writing to whichever
table has the live name) while a rebuild runs; the swap is one transaction.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Notification

from adapters.event_store import Ledger
from adapters.named_lock import exclusive
from adapters.projection_rebuild import RebuildTables
from adapters.projection_tables import projection_table
from api.usecases.ports import ArchivedEvents
from api.usecases.token_retention import removed_periods
from domain.token_retention import ArchiveError
from projections.replay import CATALOG, ProjectionSpec, Replay

BATCH = 10_000
Progress = Callable[[int, int], None]  # (position reached, head)


class RebuildRefused(Exception):
    """The rebuild cannot run (unknown projection, one already running, a bad time...)."""


@dataclass(frozen=True)
class RebuildReport:
    projection: str
    table: str
    position: int
    events: int
    records: int
    seconds: float
    copy: str | None = None
    until: str | None = None

    def to_dict(self) -> dict[str, Any]:
        fields = {k: v for k, v in asdict(self).items() if v is not None}
        return fields | {"seconds": round(self.seconds, 3)}

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def spec_named(name: str) -> ProjectionSpec[Any]:
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise RebuildRefused(f"no projection named {name!r} (known: {known})") from None


@contextmanager
def _archives_needed() -> Iterator[None]:
    """An archive of a removed month that cannot be found or is not the one recorded."""
    try:
        yield
    except ArchiveError as exc:
        raise RebuildRefused(f"{exc} (--archives names where the archives are)") from None


@contextmanager
def _no_garbage_collection() -> Iterator[None]:
    """A replay allocates millions of objects and no reference cycles: the cyclic collector
    would only walk the growing heap again and again (a fifth of a rebuild's time)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _replay(
    ledger: Ledger, replay: Replay[Any], progress: Progress, archived: ArchivedEvents | None
) -> int:
    """Fold every event of the projection's topics up to the head; the position reached.
    The months retention removed are read from their archives, merged back in position order.

    The log is read in windows of `BATCH` positions, the next one on another thread (and
    connection) while this one folds: the database driver lets go of the GIL while it waits."""
    tables = RebuildTables(ledger)
    head, topics = ledger.head(), replay.spec.topics
    known = archived.periods if archived is not None else frozenset[str]()
    if archived is None and (removed := removed_periods(ledger)):
        raise RebuildRefused(
            f"retention removed {', '.join(r.period for r in removed)} from this store: a "
            "replay from the first event reads them from their archives, and was given none"
        )

    def window(after: int, upto: int, topics: tuple[str, ...]) -> list[Notification]:
        stored = tables.window(after, upto, topics)
        return archived.merged(stored, after, upto, topics) if archived is not None else stored

    progress(0, head)
    reading = ThreadPoolExecutor(1, thread_name_prefix="replay-read")
    with reading as reader, _no_garbage_collection(), _archives_needed():
        windows = [(a, min(a + BATCH, head)) for a in range(0, head, BATCH)]
        pending = [reader.submit(window, a, b, topics) for a, b in windows[:1]]
        for i, (_, upto) in enumerate(windows):
            batch = pending.pop().result()
            if i + 1 < len(windows):
                pending.append(reader.submit(window, *windows[i + 1], topics))
            replay.fold(batch)
            progress(upto, head)
    _check_nothing_removed_meanwhile(ledger, known)
    return head


def _check_nothing_removed_meanwhile(ledger: Ledger, known: frozenset[str]) -> None:
    """A month retention removed while the replay read the log may have been read in part."""
    removed = [r.period for r in removed_periods(ledger) if r.period not in known]
    if removed:
        raise RebuildRefused(
            f"retention removed {', '.join(removed)} while this replay read the log; "
            "run it again (it reads the archive now)"
        )


def rebuild(
    ledger: Ledger, name: str, progress: Progress, archived: ArchivedEvents | None = None
) -> RebuildReport:
    """Replay `name` into a fresh table, then swap it for the live one atomically; the
    months retention removed are read back from `archived`."""
    spec = spec_named(name)
    started = time.perf_counter()
    with exclusive(ledger.database_url, f"rebuild-{spec.name}") as held:
        if not held:
            raise RebuildRefused(f"a rebuild of {spec.name} is already running")
        projection_table(ledger.datastore, spec.table, spec.tracking, spec.codec)  # the live one
        tables = RebuildTables(ledger)
        fresh = f"{spec.table}__rebuild"
        tables.create_fresh(fresh)
        replay = Replay(spec, ledger.mapper)
        reached = _replay(ledger, replay, progress, archived)
        tables.insert(fresh, replay.rows())
        position = tables.swap(
            spec.table,
            fresh,
            spec.tracking,
            reached,
            spec.topics,
            lambda delta: replay.rows(replay.fold(delta)),
        )
    return RebuildReport(
        spec.name,
        spec.table,
        position,
        replay.events,
        len(replay.touched),
        time.perf_counter() - started,
    )


def copy_name(spec: ProjectionSpec[Any], until: datetime) -> tuple[str, str]:
    """The copy's name and its table's, from the projection and the moment."""
    stamp = until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{spec.name}@{stamp}", f"{spec.table}__at_{stamp.lower()}"


def copy_until(
    ledger: Ledger,
    name: str,
    until: datetime,
    now: datetime,
    progress: Progress,
    archived: ArchivedEvents | None = None,
) -> RebuildReport:
    """A copy of `name` as it was at `until`, in a table of its own; listed by `copies`; the
    months retention removed are read back from `archived`."""
    spec = spec_named(name)
    if until > now:
        raise RebuildRefused("the moment asked for is in the future")
    copy, table = copy_name(spec, until)
    started = time.perf_counter()
    with exclusive(ledger.database_url, f"copy-{table}") as held:
        if not held:
            raise RebuildRefused(f"the copy {copy} is being built right now")
        tables = RebuildTables(ledger)
        if any(c["name"] == copy for c in tables.copies()):
            raise RebuildRefused(f"the copy {copy} exists; drop it first to build it again")
        tables.create_fresh(table)
        replay = Replay(spec, ledger.mapper, until=until)
        position = _replay(ledger, replay, progress, archived)
        rows = replay.rows()
        tables.insert(table, rows)
        tables.register_copy(copy, spec.name, table, until, position, len(rows), now)
    return RebuildReport(
        spec.name,
        table,
        position,
        replay.events,
        len(rows),
        time.perf_counter() - started,
        copy=copy,
        until=until.isoformat(),
    )


def copies(ledger: Ledger) -> list[dict[str, Any]]:
    return RebuildTables(ledger).copies()


def copy_records(ledger: Ledger, copy: str, projection: str) -> list[Any]:
    """The records of a copy of `projection` (for `clients list --as-of-copy`)."""
    found = [c for c in copies(ledger) if c["name"] == copy]
    if not found:
        raise RebuildRefused(f"no copy named {copy!r} (keyledger projections copies lists them)")
    if found[0]["projection"] != projection:
        raise RebuildRefused(f"{copy} is a copy of {found[0]['projection']}, not of {projection}")
    codec = CATALOG[projection].codec
    return [codec.from_json(text) for text in RebuildTables(ledger).rows(found[0]["table_name"])]


def drop_copy(ledger: Ledger, copy: str) -> None:
    tables = RebuildTables(ledger)
    found = [c for c in tables.copies() if c["name"] == copy]
    if not found:
        raise RebuildRefused(f"no copy named {copy!r}")
    tables.drop(found[0]["table_name"])
    tables.forget_copy(copy)
