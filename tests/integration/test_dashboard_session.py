"""A signed-in dashboard stays signed in while its client stays allowed (issue 15), and no
longer: a revoked session, a suspended client or a lost scope ends it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from adapters.clock import FixedClock
from api.bootstrap import Runtime
from api.settings import Settings
from api.usecases.client_admin import ClientChanges, NewCredentials
from api.usecases.issuance import MAX_SESSION, SESSION_RENEWAL
from domain.admin_scopes import READ, Admin
from tests.integration.helpers import basic, register, running, stored_token

START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
OPS = Admin.installation("test")


class Session:
    def __init__(self, http: AsyncTestClient[Any], runtime: Runtime, clock: FixedClock) -> None:
        self.http, self.runtime, self.clock = http, runtime, clock
        self.analyst: NewCredentials | None = None
        self.token: str | None = None  # the cookie, kept by hand: the test host has no domain

    def keep_cookie(self, response: Any) -> None:
        header = response.headers.get("set-cookie")
        if header is None:
            return
        value = header.split("kl_dashboard=", 1)[1].split(";", 1)[0].strip('"')
        self.token = value or None
        if "max-age=0" in header.lower() or "expires=thu, 01 jan 1970" in header.lower():
            self.token = None

    async def sign_in(self) -> NewCredentials:
        self.analyst = await register(
            self.runtime, name="analyst", allowed_scopes=[READ], token_ttl=300
        )
        response = await self.http.post(
            "/admin/dashboard/login",
            content=(
                f"client_id={self.analyst.client_id}&client_secret={self.analyst.client_secret}"
            ),
            headers=FORM,
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        self.keep_cookie(response)
        return self.analyst

    def cookie(self) -> str:
        assert self.token is not None
        return self.token

    def headers(self) -> dict[str, str]:
        return {"Cookie": f"kl_dashboard={self.token}"} if self.token else {}

    async def keep_alive(self) -> Any:
        response = await self.http.post("/admin/dashboard/session", headers=self.headers())
        self.keep_cookie(response)
        return response


@pytest.fixture
async def session(settings: Settings) -> AsyncIterator[Session]:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        yield Session(http, runtime, clock)


async def test_a_young_session_is_kept_as_it_is(session: Session) -> None:
    await session.sign_in()
    first = session.cookie()
    session.clock.advance(60)
    response = await session.keep_alive()
    assert response.status_code == 200, response.text
    assert response.json()["renewed"] is False
    assert session.cookie() == first


async def test_past_half_its_life_the_session_gets_a_new_token_without_signing_in(
    session: Session,
) -> None:
    analyst = await session.sign_in()
    first = session.cookie()
    session.clock.advance(200)
    response = await session.keep_alive()
    assert response.json() == {"renewed": True, "expires_in": 300}
    renewed = session.cookie()
    assert renewed != first
    claims = jwt.decode(renewed, options={"verify_signature": False})
    assert claims["client_id"] == analyst.client_id
    assert claims["scope"] == READ
    assert stored_token(session.runtime, claims["jti"]).auth_method == SESSION_RENEWAL
    session.clock.advance(250)  # past the first token's expiry
    page = await session.http.get("/admin/dashboard", headers=session.headers())
    assert page.status_code == 200, page.text[:300]


async def test_renewals_keep_the_sign_in_time_and_end_after_the_longest_session(
    session: Session,
) -> None:
    await session.sign_in()
    signed_in = int(START.timestamp())
    for _ in range(int(MAX_SESSION.total_seconds() // 200) - 1):
        session.clock.advance(200)
        response = await session.keep_alive()
        assert response.status_code == 200, response.text
    claims = jwt.decode(session.cookie(), options={"verify_signature": False})
    assert claims["auth_time"] == signed_in
    assert claims["exp"] == signed_in + MAX_SESSION.total_seconds()  # never past the session
    session.clock.advance(200)
    refused = await session.keep_alive()
    assert refused.status_code == 401
    assert session.token is None


async def test_a_suspended_client_cannot_keep_its_session(session: Session) -> None:
    analyst = await session.sign_in()
    session.runtime.admin.suspend(analyst.client_id, by=OPS, reason="left the team")
    await asyncio.to_thread(session.runtime.follower.catch_up)
    session.clock.advance(200)
    response = await session.keep_alive()
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_a_session_whose_client_lost_its_admin_scope_ends(session: Session) -> None:
    analyst = await session.sign_in()
    session.runtime.admin.update(
        analyst.client_id, ClientChanges(allowed_scopes=["reports:read"]), by=OPS
    )
    await asyncio.to_thread(session.runtime.follower.catch_up)
    session.clock.advance(200)
    response = await session.keep_alive()
    assert response.status_code == 401
    assert session.token is None


async def test_revoking_the_sessions_tokens_ends_it(session: Session) -> None:
    analyst = await session.sign_in()
    session.clock.advance(10)
    session.runtime.admin.revoke_tokens(analyst.client_id, by=OPS, reason="laptop stolen")
    await asyncio.to_thread(session.runtime.follower.catch_up)
    session.clock.advance(190)
    response = await session.keep_alive()
    assert response.status_code == 401


async def test_without_a_cookie_there_is_nothing_to_keep(session: Session) -> None:
    response = await session.keep_alive()
    assert response.status_code == 401


async def test_a_renewal_revokes_the_token_it_replaces(session: Session) -> None:
    await session.sign_in()
    first = jwt.decode(session.cookie(), options={"verify_signature": False})
    session.clock.advance(200)
    assert (await session.keep_alive()).json()["renewed"] is True
    assert stored_token(session.runtime, first["jti"]).revoked_at is not None


async def test_a_token_from_the_token_endpoint_is_not_a_session(session: Session) -> None:
    analyst = await register(session.runtime, name="analyst", allowed_scopes=[READ])
    issued = await session.http.post(
        "/oauth2/token",
        content="grant_type=client_credentials",
        headers=basic(analyst.client_id, analyst.client_secret),
    )
    session.token = issued.json()["access_token"]
    session.clock.advance(200)
    response = await session.keep_alive()
    assert response.status_code == 401
    assert "dashboard sign-in" in response.json()["error_description"]


async def test_revoking_the_signed_in_secret_ends_the_session(session: Session) -> None:
    analyst = await session.sign_in()
    session.runtime.admin.rotate_secret(analyst.client_id, by=OPS, reason="leak")
    session.runtime.admin.revoke_previous_secret(analyst.client_id, by=OPS, reason="leak")
    await asyncio.to_thread(session.runtime.follower.catch_up)
    session.clock.advance(200)
    response = await session.keep_alive()
    assert response.status_code == 401
    assert session.token is None


async def test_a_renewal_keeps_the_sessions_audience(session: Session) -> None:
    issuer = session.runtime.settings.issuer_url
    analyst = await register(
        session.runtime,
        name="analyst",
        allowed_scopes=[READ],
        audiences=[issuer, "https://reports.example"],
        default_audience="https://reports.example",
    )
    signed_in = await session.http.post(
        "/admin/dashboard/login",
        content=f"client_id={analyst.client_id}&client_secret={analyst.client_secret}",
        headers=FORM,
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text
    session.keep_cookie(signed_in)
    assert jwt.decode(session.cookie(), options={"verify_signature": False})["aud"] == issuer
    session.clock.advance(200)
    assert (await session.keep_alive()).json()["renewed"] is True
    assert jwt.decode(session.cookie(), options={"verify_signature": False})["aud"] == issuer


async def test_a_sign_in_posted_from_another_site_is_refused(session: Session) -> None:
    analyst = await register(session.runtime, name="analyst", allowed_scopes=[READ])
    form = f"client_id={analyst.client_id}&client_secret={analyst.client_secret}"
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
    ):
        response = await session.http.post(
            "/admin/dashboard/login",
            content=form,
            headers={**FORM, **headers},
            follow_redirects=False,
        )
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
