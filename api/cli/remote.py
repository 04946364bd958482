"""The admin API over HTTP, as the CLI calls it: a token from /oauth2/token, then JSON.

Every failure becomes one `CliError` line: the server's `error_description` for a refusal,
the server's URL for a connection that fails. The access token is cached (mode 0600) until
shortly before it expires; a cached token the server no longer accepts is replaced once.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from api.cli import identity as ids
from api.cli.output import CliError
from api.cli.profile import cache_token, cached_token, forget_token

TIMEOUT = 30.0
ADMIN_SCOPE_PREFIX = "keyledger:admin"


def describe(response: httpx.Response) -> str:
    """The server's own words for a refusal (RFC 6749 §5.2 `error_description`)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error_description", "error", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


def _unreachable(server: str, exc: httpx.HTTPError) -> CliError:
    if isinstance(exc, httpx.TimeoutException):
        return CliError(f"the keyledger server at {server} did not answer within {TIMEOUT:.0f} s")
    reason = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
    return CliError(f"cannot reach the keyledger server at {server}: {reason.lower()}")


class AdminApi:
    """One admin identity talking to one server."""

    def __init__(self, identity: ids.Identity) -> None:
        self.identity = identity
        self._http = httpx.Client(base_url=identity.server, timeout=TIMEOUT)
        self.granted_scopes: list[str] = []

    @classmethod
    def connect(cls, server: str | None, profile: str) -> AdminApi:
        return cls(ids.from_environment(server, profile))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise _unreachable(self.identity.server, exc) from None

    def _token_endpoint(self) -> str:
        """The `aud` of a client assertion: the token endpoint the server names (RFC 8414)."""
        response = self._send("GET", "/.well-known/oauth-authorization-server")
        if response.is_success:
            endpoint = response.json().get("token_endpoint")
            if isinstance(endpoint, str):
                return endpoint
        return f"{self.identity.server}/oauth2/token"

    def fetch_token(self) -> str:
        """A new access token for this admin (client_credentials, RFC 6749 §4.4)."""
        identity = self.identity
        audience = "" if identity.client_secret else self._token_endpoint()
        form, headers = identity.token_request(audience)
        response = self._send("POST", "/oauth2/token", data=form, headers=headers)
        if not response.is_success:
            raise CliError(
                f"the server refused the admin credentials ({identity.source}, client "
                f"{identity.client_id}): {describe(response)}"
            )
        body = response.json()
        token = body.get("access_token")
        if not isinstance(token, str):
            raise CliError(f"{identity.server} answered the token request without a token")
        self.granted_scopes = str(body.get("scope", "")).split()
        cache_token(identity.cache_key, token, int(body.get("expires_in", 0)))
        return token

    def verify(self, within: float = 0.0) -> list[str]:
        """Fetch a token (retrying a refusal for `within` seconds: a new admin client is
        known to every replica within one); the admin scopes it holds, or an error."""
        deadline = time.monotonic() + within
        while True:
            try:
                self.fetch_token()
                break
            except CliError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.3)
        admin = [s for s in self.granted_scopes if s.startswith(ADMIN_SCOPE_PREFIX)]
        if not admin:
            raise CliError(f"client {self.identity.client_id} holds no keyledger:admin scope")
        return admin

    def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        if_version: int | None = None,
    ) -> Any:
        """One admin API request; its JSON answer, or a `CliError` with the server's words."""
        headers = {} if if_version is None else {"If-Match": f'"{if_version}"'}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        key = self.identity.cache_key
        cached = cached_token(key)
        for token in ([cached] if cached else []) + [None]:
            bearer = token or self.fetch_token()
            response = self._send(
                method,
                path,
                json=None if body is None else {k: v for k, v in body.items() if v is not None},
                params=query,
                headers={**headers, "Authorization": f"Bearer {bearer}"},
            )
            if response.status_code == 401 and token is not None:
                forget_token(key)  # revoked or rotated away: one more try with a new token
                continue
            break
        if response.is_error:
            raise CliError(describe(response))
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)
