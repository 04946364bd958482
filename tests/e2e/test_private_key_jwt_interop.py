"""Interop: Authlib's PrivateKeyJWT (a client library nobody here wrote, signing with joserfc)
gets tokens from `keyledger serve`, introspects and revokes them, for clients registered with
`keyledger clients register --auth-method private_key_jwt --jwks-file`, with RSA, EC and
Ed25519 keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tests.assertions import ClientKey, client_key, jwks_of
from tests.e2e.server import cli, cli_json, environment, free_port, serve

JOSERFC_KEYS: dict[str, Any] = {"RS256": RSAKey, "PS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}


def pem(key: ClientKey) -> bytes:
    return key.private_key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def register(env: dict[str, str], tmp_path: Path, key: ClientKey) -> str:
    jwks_file = tmp_path / f"{key.kid}.json"
    jwks_file.write_text(json.dumps(jwks_of(key)))
    created = cli_json(
        env,
        "clients",
        "register",
        "--name",
        f"signer-{key.alg}",
        "--scope",
        "reports:read keyledger:introspect",
        "--default-scope",
        "reports:read",
        "--auth-method",
        "private_key_jwt",
        "--jwks-file",
        str(jwks_file),
    )
    assert created["token_endpoint_auth_method"] == "private_key_jwt"
    assert "client_secret" not in created
    client_id: str = created["client_id"]
    return client_id


@pytest.mark.timeout(120)
def test_authlib_private_key_jwt_gets_tokens_with_rsa_ec_and_ed25519_keys(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", port)
    keys = [client_key(alg) for alg in ("RS256", "PS256", "ES256", "EdDSA")]
    with serve(env, log=tmp_path / "serve.log") as base:
        clients = {key.alg: register(env, tmp_path, key) for key in keys}
        token_url = f"{base}/oauth2/token"
        jwks = httpx.get(f"{base}/oauth2/jwks").json()
        for key in keys:
            signing_key = JOSERFC_KEYS[key.alg].import_key(pem(key), {"kid": key.kid})
            # No fixed endpoint: each assertion is addressed to the URL it is sent to.
            with OAuth2Client(
                clients[key.alg],
                signing_key,
                token_endpoint_auth_method=PrivateKeyJWT(alg=key.alg),
                revocation_endpoint_auth_method=PrivateKeyJWT(alg=key.alg),  # its default: basic
            ) as session:
                token = session.fetch_token(
                    token_url, grant_type="client_credentials", scope="reports:read"
                )
                access_token = token["access_token"]
                seen = session.introspect_token(f"{base}/oauth2/introspect", token=access_token)
                assert seen.json()["active"] is True, seen.text
                assert session.revoke_token(f"{base}/oauth2/revoke", access_token).is_success
                after = session.introspect_token(f"{base}/oauth2/introspect", token=access_token)
                assert after.json() == {"active": False}
            kid = jwt.get_unverified_header(access_token)["kid"]
            [jwk] = [k for k in jwks["keys"] if k["kid"] == kid]
            claims = jwt.decode(
                access_token, jwt.PyJWK(jwk).key, algorithms=["ES256"], audience=base, issuer=base
            )
            assert claims["client_id"] == clients[key.alg]
            assert claims["scope"] == "reports:read"


def test_registering_a_private_key_from_the_cli_fails_with_a_clear_message(
    tmp_path: Path,
) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    key = client_key("ES256")
    private = ECKey.import_key(pem(key)).as_dict(private=True)
    jwks_file = tmp_path / "private.json"
    jwks_file.write_text(json.dumps({"keys": [private]}))
    args = ["clients", "register", "--name", "x", "--scope", "a", "--auth-method"]
    with serve(env, log=tmp_path / "serve.log"):
        done = cli(env, *args, "private_key_jwt", "--jwks-file", str(jwks_file))
        listed = json.loads(cli(env, "clients", "list", "--json").stdout)
        no_file = cli(env, *args, "private_key_jwt", "--jwks-file", str(tmp_path / "none.json"))
        no_keys = cli(env, *args, "private_key_jwt")
    assert done.returncode == 1
    assert "private key material" in done.stderr
    assert [c["name"] for c in listed] == ["cli-admin"]
    assert no_file.returncode == 1
    assert "cannot read the JWK Set" in no_file.stderr
    assert no_keys.returncode == 2  # a usage error: --jwks-file is missing
