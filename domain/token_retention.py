"""`TokenRetention`: which periods of token events have left the live store, and where to.

A period's token events leave only after an archive of them is complete (the archive named
by the event, with its hash and counts), and the event is recorded before the first of them
goes: if the removal stops midway, the next run finds the period recorded and finishes it,
and the event's position is above every removed one (the log's positions keep rising for
every follower). A period is removed once; client, key and trust events never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.token_periods import TokenPeriod

TOKEN_RETENTION_ID = uuid5(NAMESPACE_URL, "urn:keyledger:token-retention")


class RemovalRefused(Exception):
    """A removal the retention rule does not allow (too early, or done already)."""


class ArchiveError(Exception):
    """An archive that is missing, incomplete, damaged, or not the one a removal recorded;
    the message says where."""


class ArchiveMismatch(Exception):
    """The store holds more of a period's events than its archive: nothing is removed."""


@dataclass(frozen=True)
class RemovedPeriod:
    """A period that has left the live store, and the archive that holds it."""

    period: str
    archive: str
    sha256: str
    events: int
    tokens: int
    first_position: int | None
    last_position: int | None
    removed_at: datetime

    def check_archive(self, sha256: str | None, where: str) -> None:
        """Refuse (`ArchiveError`) an archive found at `where` whose SHA-256 (None: there is
        none) is not the one this removal recorded: its events would not be the removed ones."""
        if sha256 is None:
            raise ArchiveError(f"no archive of {self.period} in {where}")
        if sha256 != self.sha256:
            raise ArchiveError(
                f"the archive of {self.period} in {where} is not the one its removal recorded "
                f"(SHA-256 {sha256}, recorded {self.sha256})"
            )


class TokenRetention(Aggregate):
    """Every period of token events removed from the live store; the id is fixed."""

    class Started(Aggregate.Created):
        at: datetime

    class PeriodRemoved(Aggregate.Event):
        """A period's token events were archived and leave the live store from now on."""

        period: str
        archive: str
        sha256: str
        events: int
        tokens: int
        first_position: int | None
        last_position: int | None
        retention_days: int
        at: datetime
        actor: str

    @staticmethod
    def create_id(at: datetime) -> UUID:
        return TOKEN_RETENTION_ID

    @event(Started)
    def __init__(self, at: datetime) -> None:
        self.removed: dict[str, RemovedPeriod] = {}

    def remove(
        self,
        *,
        period: TokenPeriod,
        archive: str,
        sha256: str,
        events: int,
        tokens: int,
        first_position: int | None,
        last_position: int | None,
        retention: timedelta,
        now: datetime,
        actor: str,
    ) -> None:
        if period.name in self.removed:
            raise RemovalRefused(f"{period} was removed already")
        if period.removable_at(retention) > now:
            raise RemovalRefused(
                f"{period} keeps tokens that expired less than {retention.days} days ago "
                f"until {period.removable_at(retention).isoformat()}"
            )
        self._period_removed(
            period=period.name,
            archive=archive,
            sha256=sha256,
            events=events,
            tokens=tokens,
            first_position=first_position,
            last_position=last_position,
            retention_days=retention.days,
            at=now,
            actor=actor,
        )

    @event(PeriodRemoved)
    def _period_removed(
        self,
        period: str,
        archive: str,
        sha256: str,
        events: int,
        tokens: int,
        first_position: int | None,
        last_position: int | None,
        retention_days: int,
        at: datetime,
        actor: str,
    ) -> None:
        self.removed[period] = RemovedPeriod(
            period, archive, sha256, events, tokens, first_position, last_position, at
        )

    def archive_of(self, period: TokenPeriod) -> RemovedPeriod | None:
        return self.removed.get(period.name)
