"""Behind a real nginx, the throttle, the usual-network exemption and the audit stream see each
client's own address (KEYLEDGER_TRUSTED_PROXIES=127.0.0.1, nginx's address); forwarding
headers sent straight to keyledger, from a peer nobody trusts, change nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.reverse_proxy import nginx_in_front
from tests.e2e.server import cli_json, environment, free_port, serve
from tests.kafka import Record, consume

ISSUED = "keyledger.token.issued.v1"
REFUSED = "a security observation"  # authentication_failed, token_request_rejected
FORGED = {"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9"}


@dataclass(frozen=True)
class Deployment:
    env: dict[str, str]
    direct: str  # keyledger itself
    proxied: str  # nginx in front of it
    bootstrap: str  # the embedded broker `serve` started

    def audit(self, about: set[str], until: Callable[[list[Record]], bool]) -> list[Record]:
        """The audit topic's messages about these client ids, once `until` holds of them."""

        def ours(records: list[Record]) -> list[Record]:
            return [r for r in records if r.message["data"].get("client_id") in about]

        everything = asyncio.run(
            consume(self.bootstrap, "keyledger.audit.v1", lambda rs: until(ours(rs)))
        )
        return ours(everything)


def sources(records: list[Record]) -> set[tuple[str, str, str]]:
    """(issued or refused, client id, source address) of each message."""
    return {
        (
            ISSUED if r.type == ISSUED else REFUSED,
            r.message["data"]["client_id"],
            r.message["data"]["source_ip"],
        )
        for r in records
    }


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("behind-nginx")
    broker_port = free_port()
    env = environment(
        f"sqlite:///{tmp}/k.db",
        tmp / "keys",
        free_port(),
        KEYLEDGER_KAFKA_BOOTSTRAP="",  # the embedded broker, so the audit stream can be read
        KEYLEDGER_EMBEDDED_BROKER_PORT=str(broker_port),
        KEYLEDGER_TRUSTED_PROXIES="127.0.0.1",
        KEYLEDGER_ABUSE_FAILURE_BURST="3",
        # uvicorn's own proxy-header handling would believe every peer with this: keyledger
        # turns it off, so KEYLEDGER_TRUSTED_PROXIES alone decides
        FORWARDED_ALLOW_IPS="*",
    )
    with (
        serve(env, log=tmp / "serve.log") as direct,
        nginx_in_front(direct, tmp / "nginx") as proxied,
    ):
        yield Deployment(env, direct, proxied, f"127.0.0.1:{broker_port}")


def from_address(base: str, address: str) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127.x.y.z is loopback)."""
    return httpx.Client(base_url=base, transport=httpx.HTTPTransport(local_address=address))


def token(
    http: httpx.Client, client_id: str, secret: str, headers: dict[str, str] | None = None
) -> int:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return http.post("/oauth2/token", data=form, headers=headers).status_code


def register(deployment: Deployment, name: str) -> tuple[str, str]:
    created = cli_json(deployment.env, "clients", "register", "--name", name, "--scope", "a")
    return created["client_id"], created["client_secret"]


@pytest.mark.timeout(120)
def test_behind_nginx_the_throttle_and_the_audit_stream_see_each_forwarded_client(
    deployment: Deployment,
) -> None:
    job, secret = register(deployment, "job")
    stranger, stranger6 = str(uuid.uuid4()), str(uuid.uuid4())
    proxied = deployment.proxied
    with (
        from_address(proxied, "127.0.9.9") as job_host,
        from_address(proxied, "127.0.5.5") as attacker,
        from_address(proxied, "127.0.6.6") as neighbour,
        from_address(proxied, "127.0.8.8") as elsewhere,
        httpx.Client(base_url=proxied.replace("127.0.0.1", "[::1]")) as over_ipv6,
    ):
        # what the job itself writes into the headers, nginx appends to: not believed
        assert token(job_host, job, secret, FORGED) == 200
        # one attacker behind the proxy spends its own budget, not everyone's
        assert [token(attacker, job, "kl_secret_guess") for _ in range(4)] == [401] * 3 + [429]
        assert token(neighbour, stranger, "kl_secret_guess") == 401
        assert token(over_ipv6, stranger6, "kl_secret_guess") == 401  # a quoted [::1] node
        # the job, from the network it got tokens from, is not locked out of its client id;
        # the same secret from a network it never used is throttled
        assert token(job_host, job, secret) == 200
        assert token(elsewhere, job, secret) == 429
    expected = {
        (ISSUED, job, "127.0.9.9"),  # what the new_source_network rule reads
        (REFUSED, job, "127.0.5.5"),
        (REFUSED, stranger, "127.0.6.6"),
        (REFUSED, stranger6, "::1"),
    }
    messages = deployment.audit(
        {job, stranger, stranger6}, until=lambda rs: sources(rs) >= expected
    )
    assert sources(messages) == expected


@pytest.mark.timeout(120)
def test_forwarding_headers_sent_straight_to_keyledger_are_ignored(
    deployment: Deployment,
) -> None:
    job, secret = register(deployment, "direct-job")
    guesses = [str(uuid.uuid4()) for _ in range(4)]
    with (
        from_address(deployment.direct, "127.0.3.3") as honest,
        from_address(deployment.direct, "127.0.4.4") as forger,
    ):
        assert token(honest, job, secret, FORGED) == 200
        # a new address in every request's headers: all of them count against the peer's
        answers = [
            token(forger, guess, "kl_secret_guess", {"X-Forwarded-For": f"203.0.113.{i}"})
            for i, guess in enumerate(guesses)
        ]
        assert answers == [401] * 3 + [429]
    expected = {(ISSUED, job, "127.0.3.3")} | {(REFUSED, g, "127.0.4.4") for g in guesses}
    messages = deployment.audit({job, *guesses}, until=lambda rs: sources(rs) >= expected)
    assert sources(messages) == expected
