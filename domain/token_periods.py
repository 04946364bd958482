"""Token periods: the calendar months (UTC) tokens are kept, archived and removed by.

A token's id is its jti, a UUIDv7 (domain/token.py), whose first 48 bits are its issue time
in milliseconds: the tokens issued in a month are exactly the UUIDv7 ids in one range of ids.
A period can leave the live store once every token issued in it has been expired for the
retention period: its end, plus the longest a token lives, plus the retention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain.signing_keys import TOKEN_LIFETIME_BOUND

DEFAULT_RETENTION = timedelta(days=400)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_NAME = re.compile(r"(\d{4})-(\d{2})")


class NotAPeriod(ValueError):
    """Text that does not name a month as YYYY-MM (between 1970-01 and 9999-12)."""


def _v7_floor(moment: datetime) -> UUID:
    """The lowest UUIDv7 a token issued at `moment` (to the millisecond) can have."""
    millis = (moment - _EPOCH) // _MILLISECOND
    return UUID(int=millis << 80 | 7 << 76 | 0b10 << 62)


@dataclass(frozen=True, order=True)
class TokenPeriod:
    """The tokens issued in one calendar month (UTC)."""

    year: int
    month: int

    @classmethod
    def named(cls, name: str) -> TokenPeriod:
        match = _NAME.fullmatch(name.strip())
        if match is None:
            raise NotAPeriod(f"{name!r} is not a month as YYYY-MM")
        year, month = int(match.group(1)), int(match.group(2))
        if not (1970 <= year <= 9998 and 1 <= month <= 12):
            raise NotAPeriod(f"{name!r} is not a month between 1970-01 and 9998-12")
        return cls(year, month)

    @classmethod
    def of(cls, moment: datetime) -> TokenPeriod:
        at = moment.astimezone(UTC)
        return cls(at.year, at.month)

    @property
    def name(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.next().start

    def next(self) -> TokenPeriod:
        return TokenPeriod(self.year + self.month // 12, self.month % 12 + 1)

    def months_until(self, later: TokenPeriod) -> int:
        """How many periods come after this one up to `later` (0 if it is not later)."""
        return max(0, (later.year - self.year) * 12 + later.month - self.month)

    def id_range(self) -> tuple[UUID, UUID]:
        """[low, high): every UUIDv7 token id issued in the period lies in it (as does the odd
        id of another version that happens to share the prefix: check the version)."""
        return _v7_floor(self.start), _v7_floor(self.end)

    def holds(self, token_id: UUID) -> bool:
        low, high = self.id_range()
        return token_id.version == 7 and low <= token_id < high

    def removable_at(self, retention: timedelta) -> datetime:
        """When the last token issued in the period has been expired for `retention`."""
        return self.end + TOKEN_LIFETIME_BOUND + retention

    def __str__(self) -> str:
        return self.name


def issued_period(token_id: UUID) -> TokenPeriod | None:
    """The period a UUIDv7 token id was issued in; None for an older token's name-based id."""
    if token_id.version != 7:
        return None
    millis = token_id.int >> 80
    return TokenPeriod.of(_EPOCH + millis * _MILLISECOND)


def removable_periods(first: TokenPeriod, now: datetime, retention: timedelta) -> list[TokenPeriod]:
    """Every period from `first` on whose tokens have all been expired for `retention`."""
    periods = []
    period = first
    while period.removable_at(retention) <= now:
        periods.append(period)
        period = period.next()
    return periods
