"""`keyledger serve` over TLS (issue 18), with real handshakes: a CA and a certificate for
127.0.0.1 made for the test, a token fetched over https and verified against that CA, the
metadata naming https URLs, plain HTTP and TLS below 1.2 refused; with a client CA, the
handshake asks for client certificates from that CA without requiring one.

`openssl s_client` (Debian's openssl) shows what the server's certificate request names.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from api.http.ops import readiness_probe
from tests.e2e.server import environment, free_port, serve
from tests.kafka_tls import Issued, TestCA

# What `openssl s_client` prints when the server sent a CertificateRequest (TLS 1.2 and 1.3).
CERTIFICATE_REQUEST = "Requested Signature Algorithms"
S_CLIENT = ("openssl", "s_client", "-verify_return_error", "-connect")


class TlsServer:
    """A `keyledger serve` on https, with the CAs and credentials the tests use."""

    def __init__(self, base: str, ca: TestCA, env: dict[str, str]) -> None:
        self.base, self.ca, self.env = base, ca, env
        self.port = int(env["KEYLEDGER_PORT"])

    def context(self, client: Issued | None = None) -> ssl.SSLContext:
        """A client context that trusts only the test CA (and presents `client`, if given)."""
        context = ssl.create_default_context(cafile=self.ca.cafile)
        if client is not None:
            context.load_cert_chain(client.cert, client.key)
        return context

    def token_response(self) -> httpx.Response:
        return httpx.post(
            f"{self.base}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(self.env["KEYLEDGER_ADMIN_CLIENT_ID"], self.env["KEYLEDGER_ADMIN_CLIENT_SECRET"]),
            verify=self.context(),
            timeout=10,
        )

    def handshake(self) -> str:
        """What `openssl s_client` reports of a handshake, the server's certificate verified."""
        done = subprocess.run(
            [*S_CLIENT, f"127.0.0.1:{self.port}", "-CAfile", str(self.ca.cafile)],
            input="",
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert "Verify return code: 0 (ok)" in done.stdout, done.stdout + done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCA, Issued, TestCA]:
    """The server's CA and certificate (SAN: IP 127.0.0.1), and a CA for client certificates."""
    directory = tmp_path_factory.mktemp("pki")
    ca = TestCA(directory / "server-ca", name="keyledger server CA")
    clients = TestCA(directory / "client-ca", name="keyledger client CA")
    return ca, ca.issue("server", hosts=("127.0.0.1",)), clients


def served(tmp: Path, pki: tuple[TestCA, Issued, TestCA], **extra: str) -> Iterator[TlsServer]:
    ca, server, _ = pki
    env = environment(
        f"sqlite:///{tmp}/k.db",
        tmp / "keys",
        free_port(),
        KEYLEDGER_TLS_CERT_FILE=str(server.cert),
        KEYLEDGER_TLS_KEY_FILE=str(server.key),
    )
    env.update(extra)
    with serve(env, log=tmp / "server.log", cafile=ca.cafile) as base:
        yield TlsServer(base, ca, env)


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, pki: tuple[TestCA, Issued, TestCA]
) -> Iterator[TlsServer]:
    yield from served(tmp_path_factory.mktemp("tls"), pki)


@pytest.fixture(scope="module")
def mutual_ready_server(
    tmp_path_factory: pytest.TempPathFactory, pki: tuple[TestCA, Issued, TestCA]
) -> Iterator[TlsServer]:
    client_ca = pki[2]
    yield from served(
        tmp_path_factory.mktemp("client-ca"),
        pki,
        KEYLEDGER_TLS_CLIENT_CA_FILE=str(client_ca.cafile),
    )


def test_a_token_is_issued_over_https_verified_against_the_ca(tls_server: TlsServer) -> None:
    response = tls_server.token_response()
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert tls_server.base.startswith("https://127.0.0.1:")
    assert claims["iss"] == tls_server.base


def test_the_discovery_document_names_https_urls_only(tls_server: TlsServer) -> None:
    metadata: dict[str, Any] = httpx.get(
        f"{tls_server.base}/.well-known/oauth-authorization-server", verify=tls_server.context()
    ).json()
    urls = {k: v for k, v in metadata.items() if k == "issuer" or k.endswith(("_endpoint", "_uri"))}
    assert {"issuer", "token_endpoint", "jwks_uri", "introspection_endpoint"} <= set(urls)
    assert urls["issuer"] == tls_server.base
    assert all(url.startswith(f"{tls_server.base}") for url in urls.values()), urls


def test_a_plain_http_request_to_the_tls_port_gets_no_answer(tls_server: TlsServer) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}/readyz", timeout=5)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_2_is_accepted_and_anything_older_refused(tls_server: TlsServer) -> None:
    tls12 = tls_server.context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert httpx.get(f"{tls_server.base}/readyz", verify=tls12).status_code == 200

    tls11 = tls_server.context()
    tls11.set_ciphers("DEFAULT:@SECLEVEL=0")  # this client would speak TLS 1.1 if let
    tls11.minimum_version = ssl.TLSVersion.TLSv1
    tls11.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_server.base}/readyz", verify=tls11)


def test_without_a_client_ca_no_client_certificate_is_asked_for(tls_server: TlsServer) -> None:
    assert CERTIFICATE_REQUEST not in tls_server.handshake()


def test_with_a_client_ca_the_handshake_asks_for_a_client_certificate(
    mutual_ready_server: TlsServer,
) -> None:
    shown = mutual_ready_server.handshake()
    assert CERTIFICATE_REQUEST in shown
    # Python's ssl module cannot set the request's list of CA names (OpenSSL's
    # SSL_CTX_set_client_CA_list): the list is empty, and clients send their certificate.
    assert "No client certificate CA names sent" in shown


def test_with_a_client_ca_a_client_without_a_certificate_is_still_served(
    mutual_ready_server: TlsServer,
) -> None:
    response = mutual_ready_server.token_response()
    assert response.status_code == 200, response.text


def test_with_a_client_ca_a_certificate_it_signed_is_accepted_and_a_stranger_refused(
    mutual_ready_server: TlsServer, pki: tuple[TestCA, Issued, TestCA], tmp_path: Path
) -> None:
    ours = pki[2].issue("workload", client=True)
    stranger = TestCA(tmp_path / "other-ca", name="some other CA").issue("intruder", client=True)
    url = f"{mutual_ready_server.base}/readyz"
    assert httpx.get(url, verify=mutual_ready_server.context(ours)).status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(url, verify=mutual_ready_server.context(stranger))


def test_the_images_health_check_asks_readiness_over_https(tls_server: TlsServer) -> None:
    probe = subprocess.run(
        [sys.executable, "-m", readiness_probe.__name__],
        env=tls_server.env,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
