"""Helpers for tests that run the real application against a real store."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote_plus

from litestar.testing import AsyncTestClient

from adapters.clock import SystemClock
from adapters.tracing import Tracing
from api.bootstrap import Runtime, build
from api.http.app import create_app
from api.settings import Settings
from api.usecases.client_admin import NewCredentials, register_client
from api.usecases.ports import Clock
from domain.client_settings import ClientSettings
from domain.token import IssuedToken, token_id

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode(), **FORM}


@asynccontextmanager
async def running(
    settings: Settings, clock: Clock | None = None, tracing: Tracing | None = None
) -> AsyncIterator[tuple[AsyncTestClient[Any], Runtime]]:
    """The app with its lifespan (follower, group commit) on the given store."""
    runtime = build(settings, clock=clock, tracing=tracing)
    async with AsyncTestClient(app=create_app(runtime=runtime)) as client:
        yield client, runtime


async def register(runtime: Runtime, **settings: Any) -> NewCredentials:
    """Register a client through the admin use case and wait until the view has it."""
    settings.setdefault("name", "billing-job")
    settings.setdefault("allowed_scopes", ["invoices:read", "invoices:write"])
    created = register_client(
        runtime.ledger,
        runtime.hasher,
        SystemClock(),
        ClientSettings.create(**settings),
        actor="test",
    )
    await wait_for_client(runtime, created.client_id)
    return created


async def wait_for_client(runtime: Runtime, client_id: str, within: float = 1.0) -> None:
    """DESIGN.md invariant 2: a registered client is visible within a second."""
    try:
        async with asyncio.timeout(within):
            while runtime.view.get(client_id) is None:  # noqa: ASYNC110 - a thread fills it
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"client {client_id} not visible within {within}s") from None


def stored_token(runtime: Runtime, jti: str) -> IssuedToken:
    token = runtime.ledger.repository.get(token_id(jti))
    assert isinstance(token, IssuedToken)
    return token
