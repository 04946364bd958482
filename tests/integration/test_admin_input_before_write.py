"""Admin writes validate before they write, and never answer 500 (issue 14, findings 3 and 4).

A client id in another spelling is the same client (canonicalised before any command runs),
or no client at all (404, nothing written). Numeric header and query inputs are bounded:
412 or 422 with a reason, never an overflow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.clock import FixedClock
from api.settings import Settings
from tests.integration.helpers import running
from tests.integration.test_admin_api import START, Admin, new_client


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[Admin]:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        admin = Admin(http, runtime, clock)
        await admin.login()
        yield admin


WRITES = [
    ("POST", "/suspend", {"reason": "leak"}, "status", "suspended"),
    ("PATCH", "", {"token_ttl": 600}, "token_ttl", 600),
    ("DELETE", "", None, "status", "deleted"),
    ("POST", "/secret/rotate", {"grace": "0s"}, "secrets", None),
    ("POST", "/tokens/revoke", {}, "tokens_revoked_before", None),
]


@pytest.mark.parametrize(("method", "suffix", "body", "field", "value"), WRITES)
async def test_an_upper_case_client_id_names_the_same_client_and_shows_the_new_state(
    admin: Admin, method: str, suffix: str, body: Any, field: str, value: Any
) -> None:
    c = await new_client(admin)
    head = admin.runtime.ledger.head()
    url = f"/admin/clients/{c['client_id'].upper()}{suffix}"
    response = await admin.call(method, url, json=body)
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["client_id"] == c["client_id"]
    assert shown["version"] > c["version"]
    if value is not None:
        assert shown[field] == value
    else:
        assert shown[field]
    assert admin.runtime.ledger.head() > head


async def test_a_rotation_by_an_upper_case_id_shows_the_new_secret(admin: Admin) -> None:
    c = await new_client(admin)
    url = f"/admin/clients/{c['client_id'].upper()}/secret/rotate"
    rotated = await admin.call("POST", url, json={"grace": "0s"})
    assert rotated.json()["client_secret"].startswith("kl_secret_")


async def test_an_upper_case_client_id_reads_the_same_client(admin: Admin) -> None:
    c = await new_client(admin)
    shown = await admin.call("GET", f"/admin/clients/{c['client_id'].upper()}")
    assert (shown.status_code, shown.json()["client_id"]) == (200, c["client_id"])


@pytest.mark.parametrize(
    "spelling",
    ["{{{c}}}", "urn:uuid:{c}", "{hex}", " {c}", "{c}\u00a0"],
    ids=["braces", "urn", "no-hyphens", "leading-space", "nbsp"],
)
async def test_another_spelling_of_a_client_id_is_404_and_writes_nothing(
    admin: Admin, spelling: str
) -> None:
    c = await new_client(admin)
    wrong = spelling.format(c=c["client_id"], hex=c["client_id"].replace("-", ""))
    head = admin.runtime.ledger.head()
    response = await admin.call("POST", f"/admin/clients/{wrong}/suspend", json={"reason": "x"})
    assert (response.status_code, response.json()["error"]) == (404, "not_found")
    assert admin.runtime.ledger.head() == head


IF_MATCH_NOT_VERSIONS = [
    '"²"'.encode("latin-1"),  # a digit to str.isdigit, not to int
    '"٣"'.encode(),
    b'"1e3"',
    b'"-1"',
    b'"99999999999999999999"',
]


@pytest.mark.parametrize("value", IF_MATCH_NOT_VERSIONS)
async def test_an_if_match_that_is_not_a_version_is_412_and_writes_nothing(
    admin: Admin, value: bytes
) -> None:
    c = await new_client(admin)
    head = admin.runtime.ledger.head()
    url = f"/admin/clients/{c['client_id']}/suspend"
    response = await admin.call("POST", url, json={"reason": "x"}, headers={"If-Match": value})
    assert (response.status_code, response.json()["error"]) == (412, "precondition_failed")
    assert "If-Match" in response.json()["error_description"]
    assert admin.runtime.ledger.head() == head


async def test_a_weak_bare_or_star_if_match_of_the_current_version_is_honoured(
    admin: Admin,
) -> None:
    c = await new_client(admin)
    url = f"/admin/clients/{c['client_id']}"
    for value in ('W/"1"', "2", "*"):
        response = await admin.call(
            "PATCH", url, json={"token_ttl": 600}, headers={"If-Match": value}
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "params",
    [
        {"rotation_days": "99999999999"},
        {"dormant_days": "1e9"},
        {"rotation_days": "0"},
        {"dormant_days": "36501"},
    ],
)
async def test_analytics_day_counts_out_of_range_are_422_with_a_reason(
    admin: Admin, params: dict[str, str]
) -> None:
    response = await admin.call("GET", "/admin/analytics/clients", params=params)
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")
    assert "1 to 36500" in response.json()["error_description"]


async def test_an_analytics_window_ending_at_the_start_of_time_is_422(admin: Admin) -> None:
    response = await admin.call(
        "GET", "/admin/analytics/top-clients", params={"until": "0001-01-01T00:00:00Z"}
    )
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")


@pytest.mark.parametrize("grace", ["99999999999d", "1000000000", "٣s", 10**12])
async def test_a_grace_period_too_long_to_count_is_422_and_writes_nothing(
    admin: Admin, grace: Any
) -> None:
    c = await new_client(admin)
    head = admin.runtime.ledger.head()
    url = f"/admin/clients/{c['client_id']}/secret/rotate"
    response = await admin.call("POST", url, json={"grace": grace})
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")
    assert admin.runtime.ledger.head() == head


@pytest.mark.parametrize(
    ("method", "suffix", "body", "params"),
    [
        ("POST", "/suspend", {"reason": "x" * 1001}, {}),
        ("PATCH", "", {"name": "n", "reason": "x" * 1001}, {}),
        ("DELETE", "", None, {"reason": "x" * 1001}),
    ],
)
async def test_a_reason_over_a_thousand_characters_is_refused_and_writes_nothing(
    admin: Admin, method: str, suffix: str, body: Any, params: dict[str, str]
) -> None:
    c = await new_client(admin)
    head = admin.runtime.ledger.head()
    url = f"/admin/clients/{c['client_id']}{suffix}"
    response = await admin.call(method, url, json=body, params=params)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert admin.runtime.ledger.head() == head
