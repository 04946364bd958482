"""Who the CLI is on the admin plane: the server, and the admin client's credentials.

Taken from `KEYLEDGER_ADMIN_CLIENT_ID` with `KEYLEDGER_ADMIN_CLIENT_SECRET` (or
`KEYLEDGER_ADMIN_KEY_FILE`, for a `private_key_jwt` admin) and `--server`/`KEYLEDGER_SERVER`,
else from a profile `keyledger login` wrote. Nothing here reads the server's own settings:
an admin's machine holds no database URL, key-encryption key or pepper.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from api.cli.output import CliError
from api.cli.profile import Profile, load_profile

SERVER = "KEYLEDGER_SERVER"
CLIENT_ID = "KEYLEDGER_ADMIN_CLIENT_ID"
CLIENT_SECRET = "KEYLEDGER_ADMIN_CLIENT_SECRET"  # noqa: S105 - the variable's name
KEY_FILE = "KEYLEDGER_ADMIN_KEY_FILE"
PROFILE = "KEYLEDGER_PROFILE"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60  # seconds: one token request

NOT_CONFIGURED = (
    "no keyledger server configured: run `keyledger login --server URL --client-id ID` "
    f"first, or set {SERVER} and {CLIENT_ID} with {CLIENT_SECRET} (or {KEY_FILE})"
)


def server_url(value: str) -> str:
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"the server must be an http(s) URL, not {value!r}")
    return url


@dataclass(frozen=True)
class Identity:
    """An admin client on one server, and where its credentials came from."""

    server: str
    client_id: str
    client_secret: str | None
    key_file: str | None
    source: str

    def __repr__(self) -> str:
        return f"Identity(server={self.server!r}, client_id={self.client_id!r})"

    @property
    def cache_key(self) -> str:
        """Names this identity's cached token; a changed secret or key names another."""
        credential = self.client_secret or f"{self.key_file}:{_mtime(self.key_file)}"
        digest = hashlib.sha256(credential.encode()).hexdigest()
        return f"{self.server}\n{self.client_id}\n{digest}"

    def token_request(self, audience: str) -> tuple[dict[str, str], dict[str, str]]:
        """The form and headers that authenticate this admin at the token endpoint:
        client_secret_basic (RFC 6749 §2.3.1, each part form-encoded first), or an
        RFC 7523 §2.2 client assertion addressed to the token endpoint."""
        form = {"grant_type": "client_credentials"}
        if self.client_secret is not None:
            basic = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
            encoded = base64.b64encode(basic.encode()).decode("ascii")
            return form, {"Authorization": f"Basic {encoded}"}
        assert self.key_file is not None
        form["client_assertion_type"] = JWT_BEARER
        form["client_assertion"] = client_assertion(self.client_id, self.key_file, audience)
        return form, {}


def _mtime(path: str | None) -> float:
    try:
        return Path(path).stat().st_mtime if path else 0.0
    except OSError:
        return 0.0


def from_environment(server: str | None, profile: str) -> Identity:
    """The identity to use: the environment's credentials, else the named profile's."""
    client_id = os.environ.get(CLIENT_ID)
    secret, key_file = os.environ.get(CLIENT_SECRET) or None, os.environ.get(KEY_FILE) or None
    if client_id:
        if (secret is None) == (key_file is None):
            raise CliError(f"with {CLIENT_ID}, set {CLIENT_SECRET} or {KEY_FILE} (one of them)")
        if not server:
            raise CliError(f"{CLIENT_ID} is set but no server: set {SERVER} or give --server")
        return Identity(server_url(server), client_id, secret, key_file, CLIENT_ID)
    if secret or key_file:
        raise CliError(f"{CLIENT_SECRET} or {KEY_FILE} is set without {CLIENT_ID}")
    saved = load_profile(profile)
    if saved is None:
        if server:
            raise CliError(
                f"no admin credentials for {server}: run `keyledger login --server {server} "
                f"--client-id ID`, or set {CLIENT_ID} with {CLIENT_SECRET} (or {KEY_FILE})"
            )
        raise CliError(NOT_CONFIGURED)
    if server and server_url(server) != saved.server:
        raise CliError(
            f"profile {profile} is for {saved.server}, not {server}: log in to that server "
            f"with `keyledger login --server {server} --profile NAME`"
        )
    return from_profile(saved, profile)


def from_profile(saved: Profile, name: str) -> Identity:
    return Identity(
        saved.server, saved.client_id, saved.client_secret, saved.key_file, f"profile {name}"
    )


def _algorithm(key: Any) -> str:
    """The RFC 7518 algorithm keyledger accepts for this kind of key (RFC 7523 §3)."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise CliError("the admin key must be RSA, EC P-256 or Ed25519")


def load_private_key(path: str) -> tuple[Any, str | None]:
    """A private key from a PEM file, or from a JWK (its `kid` then goes in the header)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read the admin key file {path}: {exc.strerror}") from None
    if data.lstrip().startswith(b"{"):
        try:
            jwk = json.loads(data)
            key = jwt.PyJWK(jwk).key
        except (ValueError, jwt.PyJWTError) as exc:
            raise CliError(f"{path} is not a private JWK: {exc}") from None
        kid = jwk.get("kid")
        return key, kid if isinstance(kid, str) else None
    try:
        return load_pem_private_key(data, password=None), None
    except (ValueError, TypeError) as exc:
        raise CliError(f"{path} is not an unencrypted PEM private key: {exc}") from None


def client_assertion(client_id: str, key_file: str, audience: str) -> str:
    """RFC 7523 §3: iss and sub the client id, aud the token endpoint, a fresh jti, short exp."""
    key, kid = load_private_key(key_file)
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    }
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, key, algorithm=_algorithm(key), headers=headers)
