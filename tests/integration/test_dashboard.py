"""`/admin/dashboard`: the login, who may see it, what it embeds, and how it is protected."""

# ruff: noqa: F811 - `admin` is the analytics tests' fixture, imported by name

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from domain import admin_scopes
from domain.client_settings import ClientSettings
from tests.integration.test_admin_api import Admin, new_client
from tests.integration.test_analytics_api import admin, analytics_caught_up, tokens  # noqa: F401 - fixtures

pytestmark = pytest.mark.asyncio
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def embedded(page: str) -> dict[str, Any]:
    match = re.search(r"<script id='dashboard-data' type='application/json'>(.*?)</script>", page)
    assert match, page[:500]
    data: dict[str, Any] = json.loads(match.group(1))
    return data


async def test_without_a_token_the_dashboard_is_a_login_form(admin: Admin) -> None:
    response = await admin.http.get("/admin/dashboard")
    assert response.status_code == 401
    assert "<form method='post' action='/admin/dashboard/login'>" in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_an_admin_token_shows_the_charts_with_their_data(admin: Admin) -> None:
    busy = await new_client(admin, name="busy")
    await tokens(admin, busy, 3, "a")
    await analytics_caught_up(admin)

    response = await admin.call("GET", "/admin/dashboard")

    assert response.status_code == 200
    for canvas in ("issuance", "top-clients", "alerts", "secret-age"):
        assert f"<canvas id='{canvas}'>" in response.text
    data = embedded(response.text)
    assert len(data["hours"]) == 24
    busy_series = [s for s in data["issuance"] if s["label"].startswith("busy (")]
    assert sum(busy_series[0]["counts"]) == 3
    assert data["top"][0] == {"label": f"busy ({busy['client_id'][:8]})", "issued": 3}
    assert "/admin/dashboard/static/chart-4.6.1.umd.min.js" in response.text


async def test_the_chart_library_and_script_are_served_by_keyledger(admin: Admin) -> None:
    chart = await admin.http.get("/admin/dashboard/static/chart-4.6.1.umd.min.js")
    script = await admin.http.get("/admin/dashboard/static/dashboard.js")
    assert chart.status_code == script.status_code == 200
    assert chart.text.startswith("/*!\n * Chart.js v4.6.1")
    assert "chartsRendered" in script.text


async def test_logging_in_with_admin_credentials_sets_a_strict_httponly_cookie(
    admin: Admin,
) -> None:
    creds = admin.runtime.admin.register(
        ClientSettings.create(name="ops2", allowed_scopes=["keyledger:admin"]),
        by=admin_scopes.Admin.installation("test"),
    )
    await asyncio.to_thread(admin.runtime.follower.catch_up)
    response = await admin.http.post(
        "/admin/dashboard/login",
        content=f"client_id={creds.client_id}&client_secret={creds.client_secret}",
        headers=FORM,
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/dashboard"
    cookie = response.headers["set-cookie"]
    for attribute in (
        "kl_dashboard=",
        "HttpOnly",
        "SameSite=strict",
        "Path=/admin/dashboard",
        "Secure",
    ):
        assert attribute.lower() in cookie.lower(), cookie
    token = cookie.split("kl_dashboard=", 1)[1].split(";", 1)[0]
    page = await admin.http.get("/admin/dashboard", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200


@pytest.mark.parametrize(
    "form",
    [
        "client_id=nobody&client_secret=guess",
        "client_id=&client_secret=",
        "token=not.a.jwt",
        "client_id=%00%ff&client_secret=%00",
    ],
)
async def test_bad_logins_get_the_form_again_and_no_cookie(admin: Admin, form: str) -> None:
    response = await admin.http.post(
        "/admin/dashboard/login", content=form, headers=FORM, follow_redirects=False
    )
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "<form" in response.text


async def test_a_client_without_admin_scope_cannot_sign_in(admin: Admin) -> None:
    plain = await new_client(admin, name="plain")
    response = await admin.http.post(
        "/admin/dashboard/login",
        content=f"client_id={plain['client_id']}&client_secret={plain['client_secret']}",
        headers=FORM,
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert "not the credentials of an admin client" in response.text


async def test_client_names_cannot_inject_markup(admin: Admin) -> None:
    evil = await new_client(admin, name="</script><script>alert(1)</script>")
    await tokens(admin, evil, 1, "a")
    await analytics_caught_up(admin)
    page = (await admin.call("GET", "/admin/dashboard")).text
    assert "<script>alert(1)" not in page
    assert any("alert(1)" in s["label"] for s in embedded(page)["issuance"])
