"""RFC 3339 timestamps from users: the CLI's `--at`/`--before` and the API's `?at=`."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.client_settings import InvalidClientSettings

# Within these, converting to UTC or counting a window back never overflows the calendar.
EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, tzinfo=UTC)


def parse_rfc3339(text: str) -> datetime:
    """A timezone-aware instant; `2026-11-20T10:00Z` and `2026-11-20T10:00:00+01:00` both work."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidClientSettings(f"not an RFC 3339 time: {text!r}") from None
    if value.tzinfo is None:
        raise InvalidClientSettings(f"an RFC 3339 time needs an offset or Z: {text!r}")
    if not EARLIEST <= value <= LATEST:
        raise InvalidClientSettings(f"an RFC 3339 time must be in years 2 to 9998: {text!r}")
    return value
