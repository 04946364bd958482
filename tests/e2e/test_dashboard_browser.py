"""The dashboard in a real browser: Debian's Chromium, headless, signs in through the form and
draws all four charts. The screenshot is kept in the test's output directory."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.server import cli_json, environment, free_port, serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAINTED = """(id) => {
  const canvas = document.getElementById(id);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
  return painted;
}"""


@pytest.mark.timeout(180)
def test_chromium_signs_in_and_renders_every_chart(tmp_path: Path) -> None:
    env = environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_ANALYTICS_INTERVAL="0.1",
    )
    with serve(env, log=tmp_path / "serve.log") as base:
        admin = cli_json(env, "admin", "bootstrap", "--force")
        jobs = [
            cli_json(env, "clients", "register", "--name", f"job-{i}", "--scope", "a")
            for i in range(3)
        ]
        time.sleep(1.2)
        # job-i gets i + 2 tokens: more than the one the admin's own sign-in may already count.
        for i, job in enumerate(jobs):
            for _ in range(i + 2):
                reply = httpx.post(
                    f"{base}/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=(job["client_id"], job["client_secret"]),
                )
                assert reply.status_code == 200
        time.sleep(0.5)  # the analytics table follows within its interval
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(f"{base}/admin/dashboard")
                page.fill("input[name=client_id]", admin["client_id"])
                page.fill("input[name=client_secret]", admin["client_secret"])
                page.click("button[type=submit]")
                page.wait_for_selector("body[data-charts-rendered='4']", timeout=15_000)
                painted = {
                    chart: page.evaluate(PAINTED, chart)
                    for chart in ("issuance", "top-clients", "alerts", "secret-age")
                }
                labels = page.evaluate("() => Chart.getChart('top-clients').data.labels")
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            finally:
                browser.close()
    # The sign-in page itself answers 401 (no token yet): the one resource error expected.
    assert [e for e in errors if "status of 401" not in e] == []
    assert all(count > 1000 for count in painted.values()), painted
    assert [label.split(" (")[0] for label in labels][:3] == ["job-2", "job-1", "job-0"]
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
