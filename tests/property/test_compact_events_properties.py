"""Issue 17: the compact token-event format loses nothing. Any `IssuedToken.Issued` stored
through the event store's mapper reads back equal, field for field and type for type; an
event the compact format cannot hold exactly goes to format 1 (JSON) instead, never wrong."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

from adapters.compact_events import (
    ISSUED_TOPIC,
    CompactMapper,
    KeyNumbers,
    decode_issued,
    encode_issued,
)
from adapters.event_store import Ledger
from domain.token import IssuedToken, new_jti, token_id

texts = st.text(max_size=40)
canonical_uuids = st.uuids().map(str)
thumbprints = st.binary(min_size=1, max_size=64).map(
    lambda raw: __import__("base64").urlsafe_b64encode(raw).rstrip(b"=").decode()
)
addresses = st.one_of(
    st.none(),
    st.ip_addresses().map(str),
    st.sampled_from(["::ffff:10.0.0.1", "fe80::1%eth0", "010.1.1.1", "2001:DB8::1", "not-an-ip"]),
    texts,
)
utc_moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
any_moments = st.one_of(
    utc_moments,
    st.datetimes(timezones=st.sampled_from([timezone(timedelta(hours=2)), UTC])),
)
big_ints = st.one_of(st.integers(0, 10), st.integers(-(2**70), 2**70))
v7_jtis = st.builds(new_jti, utc_moments, st.binary(min_size=10, max_size=10))
# Keys the mapper below has read back from a store: numbered by their events' versions.
LEARNT_KIDS = {2: "Gx3kP9vQ2mN7rT5wY8zB1cD4fH6jL0sA-_uE3iO9pKq", 5: "k-2", 300: "third"}


def events(moments: st.SearchStrategy[datetime]) -> st.SearchStrategy[IssuedToken.Issued]:
    return st.builds(
        lambda jti, client, scopes, audience, issued, lifetime, kid, cv, sg, method, ip: (
            IssuedToken.issue(
                jti=jti,
                client_id=client,
                scopes=scopes,
                audience=audience,
                issued_at=issued,
                expires_at=issued + lifetime,
                kid=kid,
                client_version=cv,
                secret_generation=sg,
                auth_method=method,
                source_ip=ip,
            )
        ),
        st.one_of(v7_jtis, canonical_uuids, canonical_uuids.map(str.upper), texts),
        st.one_of(canonical_uuids, texts),
        st.lists(st.one_of(st.text(min_size=1, max_size=12), texts), max_size=4),
        st.lists(texts, max_size=3),
        moments,
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1)),
        st.one_of(st.sampled_from(sorted(LEARNT_KIDS.values())), thumbprints, texts),
        big_ints,
        big_ints,
        st.one_of(
            st.sampled_from(["client_secret_basic", "private_key_jwt", "session_renewal"]), texts
        ),
        addresses,
    )


def transcoder() -> JSONTranscoder:
    """eventsourcing's JSON transcoder as an application registers it."""
    json = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):
        json.register(transcoding)
    return json


MAPPER = CompactMapper(transcoder())
for _number, _kid in LEARNT_KIDS.items():
    MAPPER.key_numbers.learn(_number, _kid)
JSON_MAPPER = Mapper(transcoder())


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (a str stays a str, a UTC time UTC)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


@given(events(any_moments))
def test_every_issued_event_reads_back_exactly(event: IssuedToken.Issued) -> None:
    again = MAPPER.to_domain_event(MAPPER.to_stored_event(event))
    assert type(again) is IssuedToken.Issued
    from_json = JSON_MAPPER.to_domain_event(JSON_MAPPER.to_stored_event(event))
    assert list(vars(again)) == list(vars(from_json))  # the same attributes in the same order
    for name, value in vars(event).items():
        assert same(getattr(again, name), value), name


@given(events(utc_moments))
def test_an_event_in_the_endpoints_shape_is_stored_compactly(event: IssuedToken.Issued) -> None:
    shaped = IssuedToken.issue(
        **{
            **{k: v for k, v in vars(event).items() if k not in _NOT_ARGUMENTS},
            "scopes": ["invoices:read"],
            "client_version": 3,
            "secret_generation": 1,
        }
    )
    stored = MAPPER.to_stored_event(shaped)
    assert stored.topic == ISSUED_TOPIC
    assert decode_issued(stored.state, shaped.originator_id, LEARNT_KIDS.__getitem__) == {
        k: v for k, v in vars(shaped).items() if k != "originator_version"
    }


@given(v7_jtis)
def test_a_jti_this_server_makes_is_its_tokens_id_and_is_not_stored_twice(jti: str) -> None:
    event = IssuedToken.issue(**{**TYPICAL, "jti": jti})
    assert event.originator_id == token_id(jti) == uuid.UUID(jti)
    assert jti.encode() not in encode_issued(event)
    assert uuid.UUID(jti).bytes not in encode_issued(event)


@given(st.text(), st.binary(min_size=10, max_size=10))
def test_no_other_jti_has_the_id_of_a_jti_this_server_makes(jti: str, random: bytes) -> None:
    """Older tokens' ids are name-based (version 5): never a UUIDv7, so never another's."""
    made = new_jti(datetime(2026, 12, 3, tzinfo=UTC), random)
    assert token_id(made).version == 7
    if jti != made:
        assert token_id(jti) != token_id(made)


@given(utc_moments, st.binary(min_size=10, max_size=10))
def test_jtis_this_server_makes_sort_by_their_time(moment: datetime, random: bytes) -> None:
    later = moment + timedelta(milliseconds=1)
    assert new_jti(moment, random) < new_jti(later, bytes(10))
    assert uuid.UUID(new_jti(moment, random)).version == 7


def test_a_key_number_no_key_event_gave_is_an_error_not_a_guess() -> None:
    numbers = KeyNumbers()
    numbers.learn(2, "a")
    loads: list[int] = []
    numbers.load = lambda: loads.append(1)
    assert (numbers.kid(2), loads) == ("a", [])
    try:
        numbers.kid(3)
    except LookupError:
        assert loads == [1]  # read the keys again once, then gave up
    else:
        raise AssertionError("an unknown key number resolved")


def test_a_kid_the_mapper_has_not_read_back_is_stored_whole() -> None:
    unknown = {**TYPICAL, "kid": "never-read-back"}
    stored = MAPPER.to_stored_event(IssuedToken.issue(**unknown))
    knows_no_numbers = CompactMapper(transcoder())
    assert knows_no_numbers.to_domain_event(stored).kid == "never-read-back"


_NOT_ARGUMENTS = {"originator_id", "originator_version", "timestamp", "originator_topic"}
_NOW = datetime(2026, 12, 3, 17, 29, 19, 121915, tzinfo=UTC)
TYPICAL: dict[str, Any] = {
    "jti": new_jti(_NOW, bytes(range(10))),
    "client_id": str(uuid.uuid4()),
    "scopes": ["invoices:read"],
    "audience": ["https://api.example.com"],
    "issued_at": _NOW,
    "expires_at": _NOW + timedelta(seconds=300),
    "kid": LEARNT_KIDS[2],
    "client_version": 3,
    "secret_generation": 2,
    "auth_method": "client_secret_basic",
    "source_ip": "10.1.2.3",
}


def test_a_typical_token_event_is_a_sixth_of_its_json() -> None:
    event = IssuedToken.issue(**TYPICAL)
    compact = len(MAPPER.to_stored_event(event).state)
    json = len(JSON_MAPPER.to_stored_event(event).state)
    assert compact * 6 <= json, (compact, json)


def test_the_store_uses_the_compact_mapper(tmp_path: Any) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path}/k.db")
    try:
        assert isinstance(ledger.mapper, CompactMapper)
    finally:
        ledger.close()
