"""The archives of the months retention removed from a store, for the readers that start from
the first event (a rebuild, an as-of copy, a new follower, the ledger's verification): each is
found where its removal recorded it, or where the operator says, and checked against the
SHA-256 the removal recorded before any of its events is read back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

from adapters.archived_log import ArchivedLog, ArchivedRange
from adapters.token_archives import ArchiveError, Archives, Row, archives_holding, open_archives
from domain.token_periods import TokenPeriod
from domain.token_retention import RemovedPeriod


def archive_of(removed: RemovedPeriod, where: str | Path | None = None) -> Archives:
    """The archives holding the very archive a removal recorded: under `where` (a directory
    or an `s3://bucket/prefix`) if given, else where the removal wrote it."""
    archives = open_archives(where) if where is not None else archives_holding(removed.archive)
    manifest = archives.manifest(TokenPeriod.named(removed.period))
    removed.check_archive(manifest.sha256 if manifest is not None else None, str(archives))
    return archives


def archived_rows(removed: RemovedPeriod, where: str | Path | None = None) -> Iterator[Row]:
    """A removed period's events in position order, its archive found and checked when the
    rows are first read."""
    period = TokenPeriod.named(removed.period)
    try:
        yield from archive_of(removed, where).rows(period)
    except ArchiveError as exc:
        raise ArchiveError(
            f"{exc}: the {removed.events} events retention removed from {period} are needed "
            "to read the log from its start"
        ) from None


def every_archived_row(
    removed: Sequence[RemovedPeriod], where: str | Path | None = None
) -> list[Iterator[Row]]:
    """The rows of every removed period's archive, each in position order, each read (and
    its archive found and checked) when first iterated."""
    return [archived_rows(r, where) for r in removed if r.first_position is not None]


def archived_log(removed: Sequence[RemovedPeriod], where: str | Path | None = None) -> ArchivedLog:
    """The removed periods' events, to merge back into a read from the first event; each
    archive is found and checked when a read first reaches its positions."""
    ranges = [
        ArchivedRange(r.first_position, r.last_position, partial(archived_rows, r, where))
        for r in removed
        if r.first_position is not None and r.last_position is not None
    ]
    return ArchivedLog(ranges, periods=[r.period for r in removed])
