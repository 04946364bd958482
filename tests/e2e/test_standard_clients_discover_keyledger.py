"""Standard OAuth client libraries, unmodified, find keyledger through its metadata and get
tokens: panva's openid-client (Node, from tests/interop's lock file, `make interop`) with its
default discovery, and Authlib, whose metadata validation accepts the document."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from tests.e2e.server import cli_json, environment, free_port, serve

INTEROP = Path(__file__).resolve().parents[1] / "interop"
WELL_KNOWN = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


@dataclass(frozen=True)
class Server:
    issuer: str
    client_id: str
    client_secret: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("discovery")
    env = environment(f"sqlite:///{tmp}/k.db", tmp / "keys", free_port())
    with serve(env, log=tmp / "serve.log") as base:
        created = cli_json(
            env,
            "clients",
            "register",
            "--name",
            "reports",
            "--scope",
            "reports:read keyledger:introspect",
            "--default-scope",
            "reports:read",
        )
        yield Server(base, created["client_id"], created["client_secret"])


def verified(server: Server, token: str) -> dict[str, Any]:
    """The claims of an access token, checked with the keys at the metadata's `jwks_uri`."""
    jwks_uri = httpx.get(f"{server.issuer}{WELL_KNOWN[0]}").json()["jwks_uri"]
    key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["ES256"], audience=server.issuer, issuer=server.issuer
    )
    return claims


@pytest.mark.timeout(120)
def test_openid_client_discovers_keyledger_by_default_and_gets_tokens(server: Server) -> None:
    assert (INTEROP / "node_modules" / "openid-client").is_dir(), "run `make interop` first"
    done = subprocess.run(
        ["node", str(INTEROP / "client_credentials.mjs")],
        env={
            **os.environ,
            "ISSUER": server.issuer,
            "CLIENT_ID": server.client_id,
            "CLIENT_SECRET": server.client_secret,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["metadata"]["issuer"] == server.issuer
    assert got["metadata"]["token_endpoint"] == f"{server.issuer}/oauth2/token"
    assert len(got["tokens"]) == 2  # client_secret_post (its default), client_secret_basic
    for token in got["tokens"]:
        assert token["token_type"].lower() == "bearer"
        assert token["scope"] == "reports:read"
        assert 0 < token["expires_in"] <= 300
        claims = verified(server, token["access_token"])
        assert (claims["client_id"], claims["scope"]) == (server.client_id, "reports:read")


@pytest.mark.timeout(120)
def test_authlib_validates_the_metadata_and_uses_every_endpoint_it_names(
    server: Server,
) -> None:
    documents = [httpx.get(f"{server.issuer}{path}").json() for path in WELL_KNOWN]
    assert documents[0] == documents[1]  # one OAuth document at both addresses
    metadata = AuthorizationServerMetadata(documents[0])
    metadata.validate()
    assert "authorization_endpoint" not in metadata  # nothing OpenID Connect is claimed
    assert "id_token_signing_alg_values_supported" not in metadata
    with OAuth2Client(
        server.client_id,
        server.client_secret,
        token_endpoint_auth_method="client_secret_basic",
        scope="reports:read",
    ) as session:
        token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        access_token = token["access_token"]
        assert verified(server, access_token)["client_id"] == server.client_id
        introspect = metadata["introspection_endpoint"]
        assert session.introspect_token(introspect, token=access_token).json()["active"] is True
        revoked = session.revoke_token(metadata["revocation_endpoint"], token=access_token)
        assert revoked.status_code == 200
        assert session.introspect_token(introspect, token=access_token).json()["active"] is False
