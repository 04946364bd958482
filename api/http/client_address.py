"""The address a request came from, for the throttle, the audit stream and the detector.

The one place the HTTP layer reads it: the TCP peer, or the client a trusted reverse proxy
forwarded (`KEYLEDGER_TRUSTED_PROXIES`, the rule in `domain/forwarded.py`). uvicorn's own
proxy-header handling is off (`api/http/server.py`), so `scope["client"]` is the peer.
"""

from __future__ import annotations

from litestar.types import Scope

from api.http.runtime import runtime_of
from domain.forwarded import client_address as forwarded_client


def client_address(scope: Scope) -> str | None:
    peer = scope.get("client")
    address: str | None = peer[0] if peer else None
    trusted = runtime_of(scope["app"].state).settings.proxies
    if not trusted:
        return address
    forwarded: list[str] = []
    x_forwarded_for: list[str] = []
    for name, value in scope["headers"]:
        if name == b"forwarded":
            forwarded.append(value.decode("latin-1"))
        elif name == b"x-forwarded-for":
            x_forwarded_for.append(value.decode("latin-1"))
    return forwarded_client(address, forwarded, x_forwarded_for, trusted)
