"""The "stock" API: a resource server that accepts keyledger access tokens.

It checks every token the way RFC 9068 §4 and RFC 6750 ask, in one of two ways:

- `--validate jwt` (the default): offline. The signature is checked with the keys published at
  the authorization server's `jwks_uri` (PyJWT's PyJWKClient fetches and caches them), then
  `typ`, `iss`, `aud`, `exp` and the scope. No call to the authorization server per request.
- `--validate introspect`: online. The token is posted to the `introspection_endpoint`
  (RFC 7662) with this API's own client credentials, and the answer is cached for a few
  seconds. A revoked token stops working within that cache time.

Both read the endpoints from the authorization server's metadata (RFC 8414).

    python stock_api.py --port 8001                         # offline validation
    python stock_api.py --port 8001 --validate introspect   # needs STOCK_CLIENT_ID/SECRET
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# Only asymmetric algorithms: a token signed with "none" or an HMAC key is never accepted.
ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"]
# How long an introspection answer is reused: the most a revocation can take to bite here.
INTROSPECTION_CACHE_SECONDS = float(os.environ.get("INTROSPECTION_CACHE_SECONDS", "10"))


class Rejected(Exception):
    """The request carries no usable token (401) or a token without the needed scope (403)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


@dataclass(frozen=True)
class Caller:
    client_id: str
    scopes: frozenset[str]


class OfflineValidator:
    """Verifies the JWT itself against the published keys."""

    def __init__(self, metadata: dict[str, Any], audience: str) -> None:
        self.issuer = metadata["issuer"]
        self.audience = audience
        # Keys are cached; an unknown `kid` (a rotated key) makes it fetch the set again.
        self.jwks = jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=True, lifespan=300)

    async def validate(self, token: str) -> Caller:
        try:
            # PyJWKClient fetches with blocking urllib: keep it off the event loop.
            key = await asyncio.to_thread(self.jwks.get_signing_key_from_jwt, token)
            decoded = jwt.decode_complete(
                token,
                key.key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "client_id"]},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise ConnectionError("cannot fetch the signing keys") from exc
        except jwt.PyJWTError as exc:
            raise Rejected(401, "invalid_token", str(exc)) from None
        # RFC 9068 §4: the header must say this is an access token, not some other JWT.
        if str(decoded["header"].get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            raise Rejected(401, "invalid_token", "not an access token (typ)")
        claims = decoded["payload"]
        return Caller(claims["client_id"], frozenset(str(claims.get("scope", "")).split()))


class IntrospectingValidator:
    """Asks the authorization server about each token (RFC 7662), with a short cache."""

    def __init__(
        self, metadata: dict[str, Any], audience: str, client_id: str, client_secret: str
    ) -> None:
        self.endpoint = metadata["introspection_endpoint"]
        self.audience = audience
        self.http = httpx.AsyncClient(auth=(client_id, client_secret), timeout=5)
        self.cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def validate(self, token: str) -> Caller:
        answer = await self._introspect(token)
        if not answer.get("active"):
            raise Rejected(401, "invalid_token", "the token is not active")
        audiences = answer.get("aud", [])
        if self.audience not in (audiences if isinstance(audiences, list) else [audiences]):
            raise Rejected(401, "invalid_token", "the token is not for this API (aud)")
        return Caller(answer["client_id"], frozenset(answer.get("scope", "").split()))

    async def _introspect(self, token: str) -> dict[str, Any]:
        key = hashlib.sha256(token.encode()).hexdigest()  # never keep tokens as dict keys
        now = time.monotonic()
        cached = self.cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        response = await self.http.post(self.endpoint, data={"token": token})
        if response.status_code != 200:
            raise ConnectionError(f"introspection answered {response.status_code}")
        answer: dict[str, Any] = response.json()
        expires = now + INTROSPECTION_CACHE_SECONDS
        if answer.get("active"):
            expires = min(expires, now + max(0.0, answer["exp"] - time.time()))
        if len(self.cache) > 10_000:
            self.cache.clear()
        self.cache[key] = (expires, answer)
        return answer


Validator = OfflineValidator | IntrospectingValidator
Handler = Callable[[Request, Caller], Awaitable[Response]]


def protected(scope: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: a valid bearer token with `scope`, or the RFC 6750 §3 error."""

    async def endpoint(request: Request) -> Response:
        validator: Validator = request.app.state.validator
        try:
            kind, _, token = request.headers.get("authorization", "").partition(" ")
            if kind.lower() != "bearer" or not token:
                raise Rejected(401, "", "")
            caller = await validator.validate(token.strip())
            if scope not in caller.scopes:
                raise Rejected(403, "insufficient_scope", f"needs scope {scope}")
        except Rejected as no:
            challenge = 'Bearer realm="stock"'
            if no.error:
                challenge += f', error="{no.error}", scope="{scope}"'
            body = {"error": no.error or "unauthorized", "error_description": no.description}
            return JSONResponse(body, no.status, headers={"WWW-Authenticate": challenge})
        except ConnectionError as down:
            # The authorization server is unreachable: "try again", not "your token is bad".
            body = {"error": "temporarily_unavailable", "error_description": str(down)}
            return JSONResponse(body, 503, headers={"Retry-After": "1"})
        return await handler(request, caller)

    return endpoint


STOCK: dict[str, int] = {"apple": 120, "pear": 40, "plum": 7}


async def list_stock(request: Request, caller: Caller) -> Response:
    return JSONResponse({"items": [{"sku": k, "available": v} for k, v in STOCK.items()]})


async def reserve(request: Request, caller: Caller) -> Response:
    sku = request.path_params["sku"]
    try:
        quantity = int((await request.json()).get("quantity", 1))
    except (ValueError, TypeError, AttributeError):
        return JSONResponse({"error": "invalid_request", "error_description": "bad body"}, 400)
    if sku not in STOCK:
        return JSONResponse({"error": "unknown_sku"}, 404)
    if not 0 < quantity <= STOCK[sku]:
        return JSONResponse({"error": "not_enough_stock", "available": STOCK[sku]}, 409)
    STOCK[sku] -= quantity
    body = {"sku": sku, "reserved": quantity, "for": caller.client_id}
    return JSONResponse(body, 201)


def create_app(keyledger_url: str, audience: str, validate: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # RFC 8414: one request tells us the issuer and where the keys and endpoints are.
        async with httpx.AsyncClient(timeout=5) as http:
            url = f"{keyledger_url.rstrip('/')}/.well-known/oauth-authorization-server"
            metadata = (await http.get(url)).raise_for_status().json()
        if validate == "introspect":
            app.state.validator = IntrospectingValidator(
                metadata, audience, os.environ["STOCK_CLIENT_ID"], os.environ["STOCK_CLIENT_SECRET"]
            )
        else:
            app.state.validator = OfflineValidator(metadata, audience)
        yield

    routes = [
        Route("/stock", protected("stock:read", list_stock), methods=["GET"]),
        Route("/stock/{sku}/reserve", protected("stock:reserve", reserve), methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--validate", choices=["jwt", "introspect"], default="jwt")
    args = parser.parse_args()
    app = create_app(
        os.environ.get("KEYLEDGER_URL", "http://127.0.0.1:8000"),
        os.environ.get("STOCK_AUDIENCE", "https://stock.internal"),
        args.validate,
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
