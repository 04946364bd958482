"""The analytics fold and its reports (pure: events in, rows out)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.client import Client
from domain.client_settings import ClientSettings
from domain.token import IssuedToken
from projections.analytics import (
    AnalyticsCodec,
    AnalyticsView,
    Bucket,
    ClientActivity,
    clients_report,
    top_clients,
)
from tests.backlog import issued_event

T0 = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


def new_client(name: str = "billing") -> Client:
    return Client.register(
        client_id=uuid.uuid4(),
        settings=ClientSettings.create(name=name, allowed_scopes=["a", "b"]),
        secret_hash="h",
        now=T0,
        actor="t",
    )


def registered(name: str = "billing") -> Client.Registered:
    event: Client.Registered = new_client(name).collect_events()[0]  # type: ignore[assignment]
    return event


def issued(client_id: str, at: datetime, scopes: list[str] | None = None) -> IssuedToken.Issued:
    return issued_event(client_id, at, scopes)


def test_a_token_counts_in_its_hour_and_day_with_scopes_and_audiences() -> None:
    view = AnalyticsView()
    client = registered()
    cid = str(client.originator_id)
    view.apply(client, 1)
    keys = view.apply(issued(cid, T0, ["a", "b"]), 2)
    assert keys == (f"hour|2026-11-20T10|{cid}", f"day|2026-11-20|{cid}", f"client|{cid}")
    hour = view.get(f"hour|2026-11-20T10|{cid}")
    assert isinstance(hour, Bucket)
    assert (hour.issued, hour.scopes, hour.audiences) == (
        1,
        {"a": 1, "b": 1},
        {"https://api.example": 1},
    )


def test_tokens_in_another_hour_go_to_another_bucket_of_the_same_day() -> None:
    view = AnalyticsView()
    client = registered()
    cid = str(client.originator_id)
    view.apply(client, 1)
    view.apply(issued(cid, T0), 2)
    view.apply(issued(cid, T0 + timedelta(hours=1)), 3)
    day = view.get(f"day|2026-11-20|{cid}")
    assert isinstance(day, Bucket)
    assert day.issued == 2
    assert view.get(f"hour|2026-11-20T11|{cid}") is not None


def test_the_client_row_follows_status_name_and_secret_rotation() -> None:
    client = new_client("job")
    later = T0 + timedelta(days=3)
    client.rotate_secret(secret_hash="h2", now=later, grace=timedelta(0), actor="t", reason=None)
    client.suspend(now=later, actor="t", reason="r")
    client.rename(name="nightly", now=later, actor="t", reason=None)
    view = AnalyticsView()
    for n, event in enumerate(client.collect_events(), 1):
        view.apply(event, n)
    row = view.get(f"client|{client.id}")
    assert isinstance(row, ClientActivity)
    assert (row.name, row.status, row.secret_generation, row.secret_since) == (
        "nightly",
        "suspended",
        2,
        later,
    )


def test_rotation_is_due_past_the_policy_and_dormant_counts_from_registration() -> None:
    fresh = ClientActivity("c1", "fresh", "active", T0, 1, T0, last_token_at=None)
    old = ClientActivity(
        "c2", "old", "active", T0 - timedelta(days=100), 1, T0 - timedelta(days=100)
    )
    report = clients_report([fresh, old], T0 + timedelta(days=1), rotation_days=90, dormant_days=30)
    rows = {c["name"]: c for c in report["clients"]}
    assert (rows["fresh"]["rotation_due"], rows["fresh"]["dormant"]) == (False, False)
    assert (rows["old"]["rotation_due"], rows["old"]["dormant"]) == (True, True)


def test_deleted_clients_count_by_status_but_are_not_listed() -> None:
    gone = ClientActivity("c1", "gone", "deleted", T0, 1, T0)
    report = clients_report([gone], T0, 90, 30)
    assert report["by_status"]["deleted"] == 1
    assert report["clients"] == []


def test_top_clients_ranks_by_tokens_then_id() -> None:
    buckets = [
        Bucket("hour", "h", "b", issued=2),
        Bucket("hour", "h2", "b", issued=2),
        Bucket("hour", "h", "a", issued=4),
    ]
    ranked = top_clients(buckets, {"a": "A"}, limit=5)
    assert ranked == [
        {"client_id": "a", "client_name": "A", "issued": 4},
        {"client_id": "b", "client_name": None, "issued": 4},
    ]


names = st.text(min_size=1, max_size=20)
counts = st.dictionaries(names, st.integers(0, 10**6), max_size=5)
times = st.datetimes(timezones=st.just(UTC))


@given(
    st.one_of(
        st.builds(
            Bucket,
            st.sampled_from(["hour", "day"]),
            names,
            names,
            st.integers(0, 10**9),
            st.integers(0, 10**9),
            counts,
            counts,
        ),
        st.builds(
            ClientActivity,
            names,
            names,
            st.sampled_from(["active", "suspended", "deleted"]),
            times,
            st.integers(1, 99),
            times,
            st.none() | times,
            st.integers(0, 10**9),
            st.integers(0, 10**9),
        ),
    )
)
def test_every_row_survives_the_table_codec(row: Bucket | ClientActivity) -> None:
    codec = AnalyticsCodec()
    assert codec.from_json(codec.to_json(row)) == row
