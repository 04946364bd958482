"""`Allow` lists HEAD wherever it lists GET and changes nothing else (head_requests.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.http.head_requests import with_head

METHODS = st.lists(
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]), unique=True
)


@given(METHODS)
def test_head_is_listed_exactly_when_get_or_head_was(methods: list[str]) -> None:
    listed = [m.strip() for m in with_head(", ".join(methods)).split(",") if m.strip()]
    assert ("HEAD" in listed) == ("GET" in methods or "HEAD" in methods)
    assert len(listed) == len(set(listed))
    assert [m for m in listed if m != "HEAD"] == [m for m in methods if m != "HEAD"]


@given(METHODS)
def test_listing_head_twice_changes_nothing(methods: list[str]) -> None:
    once = with_head(", ".join(methods))
    assert with_head(once) == once
