"""`GET /metrics` of a real `keyledger serve`: the Prometheus text format, status labels,
build information, gauges with sane values, and a bounded number of client series."""

from __future__ import annotations

import platform
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import httpx
import psycopg

from adapters.client_secrets import SecretHasher
from adapters.clock import SystemClock
from api.bootstrap import installation_secrets, open_ledger
from api.settings import Settings
from api.usecases.client_admin import register_client
from domain.client_settings import ClientSettings
from tests.e2e.scrape import Samples, label_values, parse, scrape, value, wait_until
from tests.e2e.server import cli_json, environment, free_port, serve

TOKEN = "/oauth2/token"
FORM = {"grant_type": "client_credentials"}
LATENCY = "keyledger_http_request_duration_seconds_count"
RESPONSES = "keyledger_http_responses_total"


def sqlite_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port(), **extra)


def client_of(env: dict[str, str]) -> tuple[str, str]:
    created = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
    time.sleep(1.2)  # DESIGN.md invariant 2: the server's clients model has it within 1 s
    return created["client_id"], created["client_secret"]


def token(base: str, auth: tuple[str, str]) -> httpx.Response:
    return httpx.post(f"{base}{TOKEN}", data=FORM, auth=auth, timeout=30)


def counted(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return (value(after, name, **labels) or 0.0) - (value(before, name, **labels) or 0.0)


def test_a_scrape_is_text_format_0_0_4_with_build_info_and_no_created_series(
    tmp_path: Path,
) -> None:
    env = sqlite_env(tmp_path)
    with serve(env, log=tmp_path / "serve.log") as base:
        assert token(base, client_of(env)).status_code == 200
        response = httpx.get(f"{base}/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "_created" not in response.text
    samples = parse(response.text)
    build = {
        "version": metadata.version("keyledger"),
        "python": platform.python_version(),
        "eventsourcing": metadata.version("eventsourcing"),
        "process": "serve",
    }
    assert value(samples, "keyledger_build_info", **build) == 1
    promtool = shutil.which("promtool")
    assert promtool, "make test installs Debian's prometheus package"
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=response.text, capture_output=True, text=True
    )
    assert (linted.returncode, linted.stdout + linted.stderr) == (0, "")


def test_a_200_and_a_401_are_told_apart_by_their_status_labels(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    with serve(env, log=tmp_path / "serve.log") as base:
        client_id, secret = client_of(env)
        before = scrape(f"{base}/metrics")
        assert token(base, (client_id, secret)).status_code == 200
        assert token(base, (client_id, "kl_secret_wrong")).status_code == 401
        after = scrape(f"{base}/metrics")
    route = {"route": TOKEN, "method": "POST"}
    assert counted(before, after, LATENCY, **route, status="2xx") == 1
    assert counted(before, after, LATENCY, **route, status="4xx") == 1
    assert counted(before, after, RESPONSES, **route, code="200") == 1
    assert counted(before, after, RESPONSES, **route, code="401") == 1


def test_a_full_write_queue_answers_503_counted_as_5xx_and_shows_its_depth(
    postgres_url: str, tmp_path: Path
) -> None:
    env = environment(postgres_url, tmp_path / "keys", free_port(), KEYLEDGER_WRITE_QUEUE_MAX="1")
    with serve(env, log=tmp_path / "serve.log") as base:
        auth = client_of(env)
        metrics = f"{base}/metrics"
        before = scrape(metrics)
        assert value(before, "keyledger_event_store_write_queue_depth") == 0  # at rest
        assert value(before, "keyledger_event_store_write_queue_capacity") == 1
        with (
            psycopg.connect(postgres_url) as blocker,
            psycopg.connect(postgres_url, autocommit=True) as watcher,
            ThreadPoolExecutor(2) as pool,
        ):
            blocker.execute("LOCK TABLE keyledger_events IN EXCLUSIVE MODE")
            first = pool.submit(token, base, auth)  # its batch waits for the lock

            def writer_waits() -> bool:
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                ).fetchone()
                return bool(row and row[0])

            wait_until(writer_waits, 10, "the token writer waits for the table lock")
            second = pool.submit(token, base, auth)  # queued behind it: the queue is full
            wait_until(
                lambda: value(scrape(metrics), "keyledger_event_store_write_queue_depth") == 1,
                10,
                "the queued request shows in the depth",
            )
            refused = token(base, auth)
            blocker.rollback()
            assert (first.result().status_code, second.result().status_code) == (200, 200)
        assert (refused.status_code, refused.json()["error"]) == (503, "temporarily_unavailable")
        after = scrape(metrics)
    assert value(after, "keyledger_event_store_write_queue_depth") == 0
    route = {"route": TOKEN, "method": "POST"}
    assert counted(before, after, LATENCY, **route, status="5xx") == 1
    assert counted(before, after, RESPONSES, **route, code="503") == 1
    assert counted(before, after, LATENCY, **route, status="2xx") == 2


def test_the_signing_key_ages_between_scrapes_and_its_rotation_comes_closer(
    tmp_path: Path,
) -> None:
    env = sqlite_env(tmp_path, KEYLEDGER_KEY_ROTATION_DAYS="30")
    with serve(env, log=tmp_path / "serve.log", admin=False) as base:
        first = scrape(f"{base}/metrics")
        time.sleep(1.5)
        second = scrape(f"{base}/metrics")
    ages = [value(s, "keyledger_signing_key_age_seconds") or 0.0 for s in (first, second)]
    rotations = [value(s, "keyledger_signing_key_rotation_seconds") or 0.0 for s in (first, second)]
    assert 0 <= ages[0] < 120  # the key was made when the installation was set up
    assert 1.4 <= ages[1] - ages[0] <= 10
    assert 1.4 <= rotations[0] - rotations[1] <= 10
    assert abs(ages[1] + rotations[1] - 30 * 86_400) < 1  # hands over 30 days after it began


def register(env: dict[str, str], count: int) -> list[tuple[str, str]]:
    """Clients registered on the installation before the server starts."""
    settings = Settings.from_env(env)
    ledger = open_ledger(settings)
    try:
        hasher = SecretHasher(installation_secrets(settings, ledger).pepper)
        made = [
            register_client(
                ledger,
                hasher,
                SystemClock(),
                ClientSettings.create(name=f"job-{i}", allowed_scopes=["a"]),
                actor="tests",
            )
            for i in range(count)
        ]
    finally:
        ledger.close()
    return [(c.client_id, c.client_secret) for c in made]


def test_with_top_3_only_the_3_busiest_clients_and_other_are_client_labels(
    tmp_path: Path,
) -> None:
    env = sqlite_env(tmp_path, KEYLEDGER_METRICS_CLIENT_LABELS="top:3")
    clients = register(env, 3 + 5)
    busiest = clients[2:5]
    with serve(env, log=tmp_path / "serve.log", admin=False) as base, httpx.Client() as http:

        def get_token(auth: tuple[str, str]) -> int:
            return http.post(f"{base}{TOKEN}", data=FORM, auth=auth).status_code

        for auth in clients:
            assert get_token(auth) == 200
        for auth in busiest:
            assert [get_token(auth) for _ in range(3)] == [200] * 3
        scrape(f"{base}/metrics")  # a scrape gives free places to the busiest so far
        for auth in clients:
            assert get_token(auth) == 200
        assert get_token((clients[0][0], "kl_secret_wrong")) == 401
        samples = scrape(f"{base}/metrics")
    issued = label_values(samples, "keyledger_tokens_issued_total", "client_id")
    assert issued == {client_id for client_id, _ in busiest} | {"other"}
    assert value(samples, "keyledger_tokens_issued_total", client_id="other") == 8 + 3 * 3 + 5
    errors = label_values(samples, "keyledger_oauth_errors_total", "client_id")
    assert errors == {"other"}
