"""Issue 7 part 6 for the analytics projection, over random histories of clients, tokens and
revocations spread across hours and days: a rebuild (also mid-history, with the live follower
writing on) equals the live table, and a copy at T equals the fold of the history cut at T;
and a token folded from its stored row counts as the event it stores."""

from __future__ import annotations

import contextlib
import copy
import tempfile
import uuid
from datetime import UTC, datetime, timedelta, timezone

from eventsourcing.persistence import Notification
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.client_secrets import SecretHasher
from adapters.clock import FixedClock
from adapters.event_store import Ledger
from api.usecases.analytics import analytics_follower, analytics_table
from api.usecases.client_admin import ClientAdmin
from api.usecases.projection_rebuild import copy_records, copy_until, rebuild
from domain.admin_scopes import Admin
from domain.client import ClientCommandRejected
from domain.client_settings import ClientSettings
from domain.token import IssuedToken, token_id
from projections.analytics import AnalyticsCodec, AnalyticsView, ClientActivity
from projections.replay import occurred_at
from tests.backlog import issued_event
from tests.property.test_compact_events_properties import MAPPER, events, utc_moments

START = datetime(2026, 11, 20, 22, tzinfo=UTC)  # two hours before midnight: days change
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["register", "issue", "issue", "issue", "revoke", "rotate", "suspend"]),
        st.integers(0, 50),
        st.integers(0, 45 * 60),
        st.sampled_from([["a"], ["a", "b"], ["b"]]),
    ),
    max_size=30,
)
CODEC = AnalyticsCodec()


def no_progress(done: int, head: int) -> None:
    pass


def rows(records: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(CODEC.to_json(r) for r in records)


@settings(max_examples=30, deadline=None)
@given(steps=STEPS, rebuild_at=st.integers(0, 30), cut=st.integers(0, 30 * 45 * 60))
def test_rebuilt_and_copied_analytics_equal_the_live_and_cut_folds(
    steps: list[tuple[str, int, int, list[str]]], rebuild_at: int, cut: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{tmp}/k.db")
        try:
            clock = FixedClock(START)
            admin = ClientAdmin(ledger, SecretHasher(b"p" * 32), clock)
            live = analytics_follower(ledger, 1.0)
            live.load()
            settings_ = ClientSettings.create(name="c", allowed_scopes=["a", "b"])
            t = Admin.installation("t")
            clients = [admin.register(settings_, by=t).client_id]
            tokens: list[str] = []
            for i, (step, which, seconds, scopes) in enumerate(steps):
                if i == rebuild_at:
                    rebuild(ledger, "analytics", no_progress)
                clock.advance(seconds)
                now, client_id = clock.now(), clients[which % len(clients)]
                if step == "register":
                    clients.append(admin.register(settings_, by=t).client_id)
                elif step == "issue":
                    jti = str(uuid.uuid4())
                    ledger.append([issued_event(client_id, now, scopes, jti)])
                    tokens.append(jti)
                elif step == "revoke" and tokens:
                    token = ledger.repository.get(token_id(tokens[which % len(tokens)]))
                    if token.revoke(now=now, actor="t", reason=None):
                        ledger.save(token)
                elif step == "rotate":
                    admin.rotate_secret(client_id, grace=timedelta(0), by=t)
                elif step == "suspend":
                    with contextlib.suppress(ClientCommandRejected):  # already suspended
                        admin.suspend(client_id, by=t, reason="r")
                live.catch_up()
            live.catch_up()

            stored, _ = analytics_table(ledger).load()
            assert rows(stored) == rows(live.view.all())
            rebuild(ledger, "analytics", no_progress)
            stored, position = analytics_table(ledger).load()
            assert rows(stored) == rows(live.view.all())
            assert position == ledger.head()

            moment = min(START + timedelta(seconds=cut), clock.now())
            copy = copy_until(ledger, "analytics", moment, clock.now(), no_progress)
            assert copy.copy is not None
            history_cut = AnalyticsView()
            for n in ledger.read(0, 100_000):
                event = ledger.mapper.to_domain_event(n)
                if occurred_at(event) <= moment:
                    history_cut.apply(event, n.id)
            assert rows(copy_records(ledger, copy.copy, "analytics")) == rows(history_cut.all())
        finally:
            ledger.close()


# Tokens within two days of START, in any time zone: several to an hour, a day, a midnight.
near_start = st.one_of(
    utc_moments,
    utc_moments.map(lambda t: t.astimezone(timezone(timedelta(hours=2)))),  # stored as JSON
    st.integers(-48 * 3600, 48 * 3600).map(lambda s: START + timedelta(seconds=s)),
)


@settings(max_examples=200, deadline=None)
@given(tokens=st.lists(events(near_start), min_size=1, max_size=6))
def test_a_token_counted_from_its_stored_form_counts_as_its_event(
    tokens: list[IssuedToken.Issued],
) -> None:
    """The follower's fast path (`apply_stored`, from the compact row) changes the same rows,
    in the same way, as folding the decoded event; a token stored as JSON takes the decode."""
    registered = datetime(2026, 1, 1, tzinfo=UTC)
    activities = [
        ClientActivity(client_id, "c", "active", registered, 1, registered)
        for client_id in sorted({t.client_id for t in tokens})
    ]
    by_event, by_stored = AnalyticsView(), AnalyticsView()
    by_event.replace([copy.deepcopy(a) for a in activities], 0)
    by_stored.replace([copy.deepcopy(a) for a in activities], 0)
    for position, token in enumerate(tokens, start=1):
        stored = MAPPER.to_stored_event(token)
        notification = Notification(
            id=position,
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=stored.state,
        )
        changed = by_stored.apply_stored(notification, MAPPER)
        assert changed == by_event.apply(token, position)
    assert rows(by_stored.all()) == rows(by_event.all())
    assert by_stored.position == by_event.position == len(tokens)
