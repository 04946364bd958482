"""Abuse limits at the token endpoint, over real sockets from several loopback addresses."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.server import cli_json, environment, free_port, serve


def from_address(base: str, address: str) -> httpx.Client:
    """An HTTP client whose requests come from `address` (any 127.x.y.z is loopback)."""
    return httpx.Client(base_url=base, transport=httpx.HTTPTransport(local_address=address))


def token(http: httpx.Client, client_id: str, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return http.post("/oauth2/token", data=form)


def test_a_burst_of_wrong_secrets_is_throttled_and_the_right_secret_still_works(
    tmp_path: Path,
) -> None:
    env = environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_ABUSE_FAILURE_BURST="5",
        KEYLEDGER_ABUSE_FAILURE_WINDOW="60",
    )
    with serve(env, log=tmp_path / "serve.log") as base:
        victim = cli_json(env, "clients", "register", "--name", "victim", "--scope", "a")
        other = cli_json(env, "clients", "register", "--name", "other", "--scope", "a")
        vid, secret = victim["client_id"], victim["client_secret"]
        with (
            from_address(base, "127.0.0.2") as usual,
            from_address(base, "127.0.9.9") as attacker,
            from_address(base, "127.0.7.7") as elsewhere,
        ):
            assert token(usual, vid, secret).status_code == 200  # its usual network
            answers = [token(attacker, vid, "kl_secret_guess") for _ in range(8)]
            assert [r.status_code for r in answers] == [401] * 5 + [429] * 3
            throttled = answers[-1]
            assert throttled.json()["error"] == "too_many_requests"
            assert 1 <= int(throttled.headers["Retry-After"]) <= 12
            assert throttled.headers["Cache-Control"] == "no-store"
            # the attacker's address is throttled for every client id, right secret or not
            assert token(attacker, other["client_id"], "kl_secret_guess").status_code == 429
            # the victim, with its right secret from its usual network, is never locked out
            assert token(usual, vid, secret).status_code == 200
            # its client id is throttled elsewhere, even with the right secret
            assert token(elsewhere, vid, secret).status_code == 429
            # other clients from other addresses are untouched
            assert token(elsewhere, other["client_id"], other["client_secret"]).status_code == 200
