"""Two replicas on one PostgreSQL, and the admin bootstrap, as a user runs them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from tests.e2e.server import cli, cli_json, environment, free_port, serve


def _status(base: str, client_id: str, secret: str) -> int:
    response = httpx.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=5,
    )
    return response.status_code


def _within(seconds: float, condition: Callable[[], bool]) -> float:
    """How long until `condition` held; fails past `seconds` (DESIGN.md invariants 2 and 3)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not within {seconds}s")
        time.sleep(0.02)
    return time.monotonic() - start


@contextmanager
def two_replicas(postgres_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], str, str]]:
    # Replicas share the database, the keys dir and the issuer (as behind a load balancer).
    env_a = environment(
        postgres_url, tmp_path / "keys", free_port(), KEYLEDGER_ISSUER="https://auth.example.test"
    )
    env_b = {**env_a, "KEYLEDGER_PORT": str(free_port())}
    with ExitStack() as stack:
        a = stack.enter_context(serve(env_a, log=tmp_path / "a.log"))
        b = stack.enter_context(serve(env_b, log=tmp_path / "b.log"))
        yield env_a, a, b


def _admin_token(base: str, env: dict[str, str]) -> str:
    admin = cli_json(env, "admin", "bootstrap", "--force")
    _within(1.0, lambda: _status(base, admin["client_id"], admin["client_secret"]) == 200)
    response = httpx.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(admin["client_id"], admin["client_secret"]),
    )
    token: str = response.json()["access_token"]
    return token


def test_a_suspension_through_one_replica_is_enforced_by_the_other_within_a_second(
    postgres_url: str, tmp_path: Path
) -> None:
    with two_replicas(postgres_url, tmp_path) as (env, a, b):
        token = _admin_token(a, env)
        bearer = {"Authorization": f"Bearer {token}"}
        created = httpx.post(
            f"{a}/admin/clients", json={"name": "job", "allowed_scopes": ["x"]}, headers=bearer
        ).json()
        cid, secret = created["client_id"], created["client_secret"]
        _within(1.0, lambda: _status(b, cid, secret) == 200)
        suspended = httpx.post(
            f"{a}/admin/clients/{cid}/suspend", json={"reason": "leak"}, headers=bearer
        )
        assert suspended.status_code == 200
        _within(1.0, lambda: _status(b, cid, secret) == 401)
        assert _status(a, cid, secret) == 401


def test_a_revoked_secret_stops_working_on_the_other_replica_within_a_second(
    postgres_url: str, tmp_path: Path
) -> None:
    with two_replicas(postgres_url, tmp_path) as (env, a, b):
        created = cli_json(env, "clients", "register", "--name", "job", "--scope", "x")
        cid, old = created["client_id"], created["client_secret"]
        _within(1.0, lambda: _status(b, cid, old) == 200)
        rotated = cli_json(env, "clients", "rotate-secret", cid, "--grace", "1h")
        _within(
            1.0,
            lambda: _status(b, cid, rotated["client_secret"]) == 200,
        )
        assert _status(b, cid, old) == 200  # still in its grace period
        cli_json(env, "clients", "revoke-previous", cid, "--reason", "leaked", "--yes")
        _within(1.0, lambda: _status(b, cid, old) == 401)
        assert _status(a, cid, old) == 401
        assert _status(b, cid, rotated["client_secret"]) == 200


def test_admin_bootstrap_creates_one_admin_client_and_refuses_a_second(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = environment(sqlite_url, tmp_path / "keys", free_port())
    first = cli_json(env, "admin", "bootstrap")
    assert first["client_secret"].startswith("kl_secret_")
    again = cli(env, "admin", "bootstrap")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    forced = cli_json(env, "admin", "bootstrap", "--force")
    assert forced["client_id"] != first["client_id"]
    with serve(env, log=tmp_path / "serve.log", admin=False) as base:
        env["KEYLEDGER_SERVER"] = base
        env["KEYLEDGER_ADMIN_CLIENT_ID"] = first["client_id"]
        env["KEYLEDGER_ADMIN_CLIENT_SECRET"] = first["client_secret"]
        shown = cli_json(env, "clients", "show", forced["client_id"])
    assert shown["allowed_scopes"] == ["keyledger:admin"]


@contextmanager
def served(sqlite_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = environment(sqlite_url, tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log"):
        yield env


def test_the_cli_walks_a_client_through_its_lifecycle(sqlite_url: str, tmp_path: Path) -> None:
    with served(sqlite_url, tmp_path) as env:
        _walk_through_the_lifecycle(env)


def _walk_through_the_lifecycle(env: dict[str, str]) -> None:
    cid = cli_json(env, "clients", "register", "--name", "job", "--scope", "a b")["client_id"]
    assert (
        cli_json(env, "clients", "rotate-secret", cid, "--grace", "15m")["secret_generation"] == 2
    )
    assert cli_json(env, "clients", "set-scopes", cid, "--scope", "a c")["allowed_scopes"] == [
        "a",
        "c",
    ]
    assert cli_json(env, "clients", "set-token-ttl", cid, "600")["token_ttl"] == 600
    assert cli_json(env, "clients", "set-audiences", cid, "https://api.example")["audiences"] == [
        "https://api.example"
    ]
    assert cli_json(env, "clients", "suspend", cid, "--reason", "leak")["status"] == "suspended"
    assert cli(env, "clients", "suspend", cid, "--reason", "again").returncode == 1
    assert cli_json(env, "clients", "reactivate", cid)["status"] == "active"
    revoked = cli_json(env, "clients", "revoke-tokens", cid, "--secret-generation", "1", "--yes")
    assert revoked["secret_generation_cutoffs"].keys() == {"1"}
    deleted = cli_json(env, "clients", "delete", cid, "--reason", "gone", "--yes")
    assert deleted["status"] == "deleted"
    conflict = cli(env, "clients", "rotate-secret", cid)
    assert (conflict.returncode, "deleted" in conflict.stderr) == (1, True)
    history = cli_json(env, "clients", "history", cid)
    assert [h["event"] for h in history][-2:] == ["tokens_revoked", "deleted"]
    assert "hmac-sha256" not in json.dumps(history)
    table = cli(env, "clients", "history", cid)
    assert table.returncode == 0
    assert "suspended" in table.stdout


def test_cli_duration_and_time_errors_are_one_line(sqlite_url: str, tmp_path: Path) -> None:
    with served(sqlite_url, tmp_path) as env:
        _duration_and_time_errors(env)


def _duration_and_time_errors(env: dict[str, str]) -> None:
    cid = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")["client_id"]
    for args, message in [
        (["clients", "rotate-secret", cid, "--grace", "31d"], "grace"),
        (["clients", "rotate-secret", cid, "--grace", "soon"], "duration"),
        (["clients", "show", cid, "--at", "yesterday"], "RFC 3339"),
        (["clients", "show", cid, "--at", "2099-01-01T00:00Z"], "future"),
        (["clients", "revoke-tokens", cid, "--secret-generation", "5", "-y"], "generation 5"),
    ]:
        done = cli(env, *args)
        assert done.returncode == 1, args
        assert message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1


def _introspect(base: str, caller: dict[str, str], token: str) -> bool:
    response = httpx.post(
        f"{base}/oauth2/introspect",
        data={"token": token},
        auth=(caller["client_id"], caller["client_secret"]),
    )
    active: bool = response.json()["active"]
    return active


def test_a_token_revoked_on_one_replica_is_inactive_on_the_other_within_a_second(
    postgres_url: str, tmp_path: Path
) -> None:
    with two_replicas(postgres_url, tmp_path) as (env, a, b):
        rs = cli_json(
            env, "clients", "register", "--name", "orders-api", "--scope", "keyledger:introspect"
        )
        c = cli_json(env, "clients", "register", "--name", "job", "--scope", "x")
        _within(1.0, lambda: _status(a, c["client_id"], c["client_secret"]) == 200)
        token = httpx.post(
            f"{a}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(c["client_id"], c["client_secret"]),
        ).json()["access_token"]
        _within(1.0, lambda: _introspect(b, rs, token))
        revoked = httpx.post(
            f"{a}/oauth2/revoke", data={"token": token}, auth=(c["client_id"], c["client_secret"])
        )
        assert revoked.status_code == 200
        _within(1.0, lambda: not _introspect(b, rs, token))
        assert not _introspect(a, rs, token)


def test_the_cli_shows_and_revokes_one_token(sqlite_url: str, tmp_path: Path) -> None:
    env = environment(sqlite_url, tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log") as base:
        c = cli_json(env, "clients", "register", "--name", "job", "--scope", "x")
        _within(1.0, lambda: _status(base, c["client_id"], c["client_secret"]) == 200)
        token = httpx.post(
            f"{base}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(c["client_id"], c["client_secret"]),
        ).json()["access_token"]
        import jwt

        jti = jwt.decode(token, options={"verify_signature": False})["jti"]
        assert cli_json(env, "tokens", "show", jti)["revoked_at"] is None
        revoked = cli_json(env, "tokens", "revoke", jti, "--reason", "leaked", "--yes")
        assert revoked["revoked_now"] is True
        assert cli_json(env, "tokens", "revoke", jti, "--yes")["revoked_now"] is False
        assert cli(env, "tokens", "show", "nope").returncode == 1
