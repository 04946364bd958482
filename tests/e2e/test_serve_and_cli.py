"""A user's first minutes: serve, register with the CLI, get a token, verify it via JWKS."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.e2e.server import cli, cli_json, environment, free_port, serve


def _token(base: str, client_id: str, secret: str, **form: str) -> httpx.Response:
    return httpx.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client_id, secret),
        timeout=5,
    )


def _first_token_within(base: str, client_id: str, secret: str, seconds: float) -> httpx.Response:
    """Poll until the server knows the client; DESIGN.md invariant 2 allows one second."""
    deadline = time.monotonic() + seconds
    while True:
        response = _token(base, client_id, secret, scope="invoices:read")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_client_registered_by_the_cli_gets_a_token_on_every_worker_within_a_second(
    postgres_url: str, tmp_path: Path, workers: str
) -> None:
    env = environment(postgres_url, tmp_path / "keys", free_port())
    with serve(env, "--workers", workers, log=tmp_path / "serve.log") as base:
        created = cli_json(
            env,
            "clients",
            "register",
            "--name",
            "billing-job",
            "--scope",
            "invoices:read invoices:write",
        )
        registered = time.monotonic()
        first = _first_token_within(base, created["client_id"], created["client_secret"], 1.0)
        assert first.status_code == 200, first.text
        # One worker answering says nothing of the others: each follows the log on its own
        # clock. A second after the registration, every one of them must know the client.
        time.sleep(max(0.0, registered + 1.0 - time.monotonic()))
        for _ in range(20):  # new connections: each may land on another worker
            assert _token(base, created["client_id"], created["client_secret"]).status_code == 200
        token = first.json()["access_token"]
        signing_key = jwt.PyJWKClient(f"{base}/oauth2/jwks").get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token, signing_key.key, algorithms=["ES256"], audience=base, issuer=base
        )
        assert claims["client_id"] == created["client_id"]
        assert claims["scope"] == "invoices:read"


def test_the_embedded_default_runs_on_sqlite_with_no_other_server(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/var/keyledger.db", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log") as base:
        created = cli_json(env, "clients", "register", "--name", "job", "--scope", "invoices:read")
        response = _first_token_within(base, created["client_id"], created["client_secret"], 1.0)
        assert response.status_code == 200, response.text
        assert response.json()["expires_in"] == 300
        meta = httpx.get(f"{base}/.well-known/oauth-authorization-server").json()
        assert meta["issuer"] == base


def test_a_streamed_body_over_16_kib_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent with chunked encoding
        yield b"grant_type=client_credentials&scope="
        for _ in range(1024):
            yield b"a" * 1024

    with serve(env, log=tmp_path / "serve.log") as base:
        response = httpx.post(
            f"{base}/oauth2/token",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=("id", "secret"),
        )
        assert response.status_code == 413
        assert response.json()["error"] == "invalid_request"


def test_a_repeated_authorization_header_is_invalid_request(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log") as base:
        response = httpx.post(
            f"{base}/oauth2/token",
            content="grant_type=client_credentials",
            headers=[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", "Basic eDp5"),
                ("Authorization", "Basic eDp5"),
            ],
        )
        assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_clients_list_and_show_report_the_registered_client(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = environment(sqlite_url, tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log"):
        created = cli_json(
            env,
            "clients",
            "register",
            "--name",
            "reports",
            "--scope",
            "a b",
            "--default-scope",
            "a",
            "--token-ttl",
            "600",
            "--audience",
            "https://api.example",
        )
        shown = cli_json(env, "clients", "show", created["client_id"])
        listed = cli_json(env, "clients", "list")
        human = cli(env, "clients", "list")
    assert shown["name"] == "reports"
    assert shown["allowed_scopes"] == ["a", "b"]
    assert shown["default_scopes"] == ["a"]
    assert shown["token_ttl"] == 600
    assert shown["audiences"] == ["https://api.example"]
    assert "secret_hash" not in str(shown)
    assert created["client_id"] in [c["client_id"] for c in listed]
    assert human.returncode == 0
    assert "reports" in human.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clients", "register", "--name", "x", "--scope", "a", "--token-ttl", "10"], "lifetime"),
        (["clients", "register", "--name", "x", "--scope", 'bad"scope'], "malformed scope"),
        (
            ["clients", "register", "--name", "x", "--scope", "a", "--audience", "relative"],
            "audience",
        ),
        (["clients", "show", "00000000-0000-0000-0000-000000000000"], "no client"),
    ],
)
def test_a_refusal_by_the_server_is_its_description_in_one_line_with_exit_status_1(
    sqlite_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    env = environment(sqlite_url, tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log"):
        done = cli(env, *args)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_an_unusable_database_url_is_a_one_line_error(tmp_path: Path) -> None:
    env = environment("mysql://nope/x", tmp_path / "keys", install=False)
    done = cli(env, "projections", "status")
    assert done.returncode == 1
    assert "unsupported database URL" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    env = environment("postgresql://postgres@127.0.0.1:1/nowhere", tmp_path / "keys", install=False)
    done = cli(env, "projections", "status")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
