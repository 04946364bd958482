"""The "orders" service: takes orders and reserves stock at the stock API, with a token.

It holds one access token in memory and reuses it for every call to the stock API. It asks
keyledger for a new one shortly before the old one expires (`TOKEN_REFRESH_MARGIN` seconds,
default 30), never per request; when many requests need a token at the same moment, exactly
one of them fetches it and the others wait for that answer.

    KEYLEDGER_URL=http://127.0.0.1:8000 ORDERS_CLIENT_ID=... ORDERS_CLIENT_SECRET=... \\
    STOCK_URL=http://127.0.0.1:8001 python orders.py --port 8002
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("orders")


class TokenError(Exception):
    """keyledger refused to issue a token (the RFC 6749 §5.2 `error` is in the message)."""


class TokenSource:
    """A client_credentials token, cached until shortly before it expires."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token_endpoint: str,
        client_id: str,
        client_secret: str,
        scope: str,
        resource: str,
        refresh_margin: float = 30.0,
    ) -> None:
        self.http = http
        self.token_endpoint = token_endpoint
        self.auth = (client_id, client_secret)  # client_secret_basic (RFC 6749 §2.3.1)
        self.form = {"grant_type": "client_credentials", "scope": scope, "resource": resource}
        self.refresh_margin = refresh_margin
        self.lock = asyncio.Lock()
        self.token: str | None = None
        self.refresh_at = 0.0

    async def get(self) -> str:
        if self.token is not None and time.monotonic() < self.refresh_at:
            return self.token
        async with self.lock:
            # Whoever waited for the lock finds the token the first caller just fetched.
            if self.token is None or time.monotonic() >= self.refresh_at:
                await self._fetch()
            assert self.token is not None
            return self.token

    def discard(self, token: str) -> None:
        """The API refused this token (revoked, say): the next `get` fetches a new one."""
        if self.token == token:
            self.token = None

    async def _fetch(self) -> None:
        started = time.monotonic()
        response = await self.http.post(self.token_endpoint, data=self.form, auth=self.auth)
        body = response.json()
        if response.status_code != 200:
            raise TokenError(f"{body.get('error')}: {body.get('error_description', '')}")
        lifetime = float(body["expires_in"])
        # Refresh `refresh_margin` seconds early; a margin longer than the lifetime must not
        # turn into a fetch per request, so use the token for at least a twentieth of it.
        self.refresh_at = started + max(lifetime - self.refresh_margin, lifetime / 20)
        self.token = body["access_token"]
        log.info("fetched a token, scope %r, expires in %d s", body.get("scope"), lifetime)


async def place_order(request: Request) -> Response:
    tokens: TokenSource = request.app.state.tokens
    stock: httpx.AsyncClient = request.app.state.stock
    try:
        order = await request.json()
        sku, quantity = str(order["sku"]), int(order.get("quantity", 1))
    except (ValueError, TypeError, KeyError, AttributeError):
        return JSONResponse({"error": "invalid_request", "error_description": "bad order"}, 400)
    for _attempt in range(2):
        try:
            token = await tokens.get()
        except (TokenError, httpx.HTTPError) as exc:
            log.warning("no token: %s", exc)
            return JSONResponse({"error": "no_token", "error_description": str(exc)}, 503)
        reply = await stock.post(
            f"/stock/{sku}/reserve",
            json={"quantity": quantity},
            headers={"Authorization": f"Bearer {token}"},
        )
        if reply.status_code != 401:
            break
        tokens.discard(token)  # revoked or expired early: one retry with a fresh token
    if reply.status_code != 201:
        return JSONResponse({"error": "stock_refused", "stock": reply.json()}, 409)
    return JSONResponse({"order": "accepted", "reservation": reply.json()}, 201)


def create_app() -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        keyledger = os.environ.get("KEYLEDGER_URL", "http://127.0.0.1:8000").rstrip("/")
        async with (
            httpx.AsyncClient(timeout=10) as http,
            httpx.AsyncClient(base_url=os.environ["STOCK_URL"], timeout=10) as stock,
        ):
            metadata = (
                await http.get(f"{keyledger}/.well-known/oauth-authorization-server")
            ).json()
            app.state.stock = stock
            app.state.tokens = TokenSource(
                http,
                metadata["token_endpoint"],
                os.environ["ORDERS_CLIENT_ID"],
                os.environ["ORDERS_CLIENT_SECRET"],
                scope="stock:reserve",
                resource=os.environ.get("STOCK_AUDIENCE", "https://stock.internal"),
                refresh_margin=float(os.environ.get("TOKEN_REFRESH_MARGIN", "30")),
            )
            yield

    return Starlette(routes=[Route("/orders", place_order, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
