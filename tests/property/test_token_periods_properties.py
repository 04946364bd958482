"""Issue 17: a token belongs to exactly one period, the month it was issued in, and its id
alone says which; a period leaves the live store only after its last token has been
expired for the retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from domain.signing_keys import TOKEN_LIFETIME_BOUND
from domain.token import new_jti, token_id
from domain.token_periods import TokenPeriod, issued_period, removable_periods

moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)
randoms = st.binary(min_size=10, max_size=10)
retentions = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3000))


@given(moments, randoms)
def test_a_token_is_in_the_period_it_was_issued_in_and_in_no_other(
    issued: datetime, random: bytes
) -> None:
    tid = token_id(new_jti(issued, random))
    period = TokenPeriod.of(issued)
    assert issued_period(tid) == period
    assert period.holds(tid)
    assert not period.next().holds(tid)
    if (period.year, period.month) > (1970, 1):
        before = TokenPeriod.of(period.start - timedelta(days=1))
        assert not before.holds(tid)


@given(st.text())
def test_an_older_tokens_id_is_in_no_period(jti: str) -> None:
    """A name-based id (a UUIDv4 jti's token, or any other text) is never taken for a
    UUIDv7 whose first bits happen to fall in a month."""
    tid = token_id(jti)
    if tid.version != 7:
        assert issued_period(tid) is None
        assert not TokenPeriod.of(datetime.now(UTC)).holds(tid)


@given(
    moments.filter(lambda t: t.year < 9980),
    retentions,
    st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=4000)),
)
def test_a_period_is_removable_only_once_its_last_token_has_been_expired_for_the_retention(
    issued: datetime, retention: timedelta, later: timedelta
) -> None:
    now = issued + later
    period = TokenPeriod.of(issued)
    first = TokenPeriod.of(period.start - timedelta(days=62)) if period.year > 1970 else period
    listed = removable_periods(first, now, retention)
    removable = period in listed
    latest_expiry = period.end - timedelta(microseconds=1) + TOKEN_LIFETIME_BOUND
    if removable:
        assert latest_expiry + retention < now
    else:
        assert period.end + TOKEN_LIFETIME_BOUND + retention > now
    assert listed == sorted(listed)
    assert all(p.next() == q for p, q in pairwise(listed))


@given(st.integers(1970, 9998), st.integers(1, 12))
def test_a_period_is_named_as_yyyy_mm_and_read_back(year: int, month: int) -> None:
    period = TokenPeriod(year, month)
    assert TokenPeriod.named(period.name) == period
    assert period.start < period.end == period.next().start
