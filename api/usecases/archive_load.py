"""`keyledger archive load`: a month of token events back into a store, at its own positions.

A store that holds events takes back only a month it removed, from the very archive its
removal recorded (by SHA-256), each row a token event of that month at a position within the
ones removed: anything else would be an event nobody issued, at a position followers are
past. An empty store (for an investigation) takes any archive that verifies, still token
events of the month only.
"""

from __future__ import annotations

from collections.abc import Iterator

from api.usecases.ports import EventStore, StoredRow, TokenArchives, TokenEvents
from api.usecases.token_retention import removed_periods
from domain.token_periods import TokenPeriod
from domain.token_retention import ArchiveError


def load_archive(
    ledger: EventStore, rows: TokenEvents, archives: TokenArchives, period: TokenPeriod
) -> tuple[int, int]:
    """Put the archive's events back at their positions: (restored, already there). An
    `ArchiveError` says what was refused."""
    return rows.restore(_rows_to_load(ledger, rows.topics, archives, period))


def _rows_to_load(
    ledger: EventStore, topics: tuple[str, ...], archives: TokenArchives, period: TokenPeriod
) -> Iterator[StoredRow]:
    bounds: tuple[int, int] | None = None
    if ledger.head() > 0:
        removed = next((r for r in removed_periods(ledger) if r.period == period.name), None)
        if removed is None:
            raise ArchiveError(
                f"this store never removed {period}: only the archive of a month it removed "
                "loads back into it (load into a new store with --database-url)"
            )
        manifest = archives.manifest(period)
        removed.check_archive(manifest.sha256 if manifest is not None else None, str(archives))
        bounds = (removed.first_position or 0, removed.last_position or 0)
    for row in archives.rows(period):
        position, token_id, _, topic, _ = row
        if topic not in topics or not period.holds(token_id):
            raise ArchiveError(f"position {position}: not a token event of {period}")
        if bounds is not None and not bounds[0] <= position <= bounds[1]:
            raise ArchiveError(
                f"position {position} is outside the positions the removal of {period} "
                f"recorded ({bounds[0]}-{bounds[1]})"
            )
        yield row
