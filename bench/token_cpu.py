"""Where a token's CPU goes, without wrk or sockets: the parts measured one at a time in
this process, on a fresh PostgreSQL database (issue 19's profile).

- the request: the ASGI app called directly with a `client_secret_basic` token request, 16
  at a time (Litestar, the token endpoint, authentication, the grant, signing, the event and
  its group commit), with no background work in the process; then ES256 signing alone;
- the work each token causes afterwards, per event over 20,000 stored tokens: reading them
  back, decoding them, the audit relay's CloudEvent, the analytics fold.

`python -m bench.token_cpu` prints CPU microseconds (`time.process_time`: this process's
threads; PostgreSQL's own work is not in it). uvicorn, httptools and the sockets come on top:
compare with wrk's figure (`bench.token_bench`) for those.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.event_store import Ledger
from adapters.signing import JwtSigner
from api.bootstrap import build
from api.http.app import create_app
from api.settings import Settings
from bench.common import arguments, fresh_database
from domain.token import IssuedToken, new_jti
from projections.analytics import AnalyticsView
from projections.audit_format import audit_message
from tests.integration.helpers import register

CONCURRENT = 16


def _settings(url: str, keys: Path) -> Settings:
    return Settings(
        database_url=url,
        keys_dir=keys,
        issuer="http://127.0.0.1:8300",
        kafka_bootstrap="off",
        relay_in_serve=False,
        analytics_in_serve=False,
        ledger_in_serve=False,
        abuse_failure_burst=0,
        access_log=False,
    )


async def request_cpu(settings: Settings, requests: int) -> tuple[float, float, dict[int, int]]:
    """CPU µs per token request, ES256 signing µs, and the statuses answered."""
    runtime = build(settings)
    app = create_app(runtime=runtime)
    lifespan: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    await lifespan.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def life_send(message: Any) -> None:
        started.set()

    life = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, lifespan.get, life_send)
    )
    await started.wait()
    creds = await register(runtime, allowed_scopes=["read"])
    basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode())
    body = b"grant_type=client_credentials&scope=read"
    headers = [
        (b"host", b"127.0.0.1:8300"),
        (b"authorization", b"Basic " + basic),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
    ]
    statuses: dict[int, int] = {}

    async def one() -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/oauth2/token",
            "raw_path": b"/oauth2/token",
            "query_string": b"",
            "root_path": "",
            "headers": list(headers),
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8300),
            "state": {},
        }
        await app(scope, receive, send)

    async def caller(count: int) -> None:
        for _ in range(count):
            await one()

    await asyncio.gather(*(caller(50) for _ in range(CONCURRENT)))  # warm-up
    statuses.clear()
    before = time.process_time()
    await asyncio.gather(*(caller(requests // CONCURRENT) for _ in range(CONCURRENT)))
    spent = time.process_time() - before
    key = JwtSigner(runtime.keys).key_at(datetime.now(UTC))
    claims = {"iss": "x", "sub": creds.client_id, "exp": 2_000_000_000, "jti": "j"}
    signing = _per_call(lambda: key.sign(claims), 2000)
    await lifespan.put({"type": "lifespan.shutdown"})
    await life
    return spent / max(1, sum(statuses.values())) * 1e6, signing, statuses


def _per_call(call: Callable[[], object], times: int) -> float:
    before = time.process_time()
    for _ in range(times):
        call()
    return (time.process_time() - before) / times * 1e6


def follower_cpu(url: str, count: int) -> dict[str, float]:
    """CPU µs per stored token for what reads it back after the request."""
    ledger = Ledger(url)
    try:
        now = datetime.now(UTC)
        tokens = [
            IssuedToken.issue(
                jti=new_jti(now, secrets.token_bytes(10)),
                client_id="6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f",
                scopes=["read"],
                audience=["https://api.example.com"],
                issued_at=now,
                expires_at=now + timedelta(minutes=5),
                kid="Gx3kP9vQ2mN7rT5wY8zB1cD4fH6jL0sA-_uE3iO9pKq",
                client_version=1,
                secret_generation=1,
                auth_method="client_secret_basic",
                source_ip="192.0.2.7",
            )
            for _ in range(count)
        ]
        for start in range(0, count, 1000):
            ledger.save(*tokens[start : start + 1000])
        timings: dict[str, float] = {}

        def timed(label: str, work: Callable[[], Any]) -> Any:
            before = time.process_time()
            result = work()
            timings[label] = (time.process_time() - before) / count * 1e6
            return result

        read = timed(
            "read back", lambda: [n for a in range(0, count, 1000) for n in ledger.read(a, 1000)]
        )
        events = timed("decode", lambda: [ledger.mapper.to_domain_event(n) for n in read])
        timed(
            "audit CloudEvent",
            lambda: [
                audit_message(e, n.id, "bench", b"\0" * 80)
                for e, n in zip(events, read, strict=True)
            ],
        )
        view = AnalyticsView()
        timed(
            "analytics fold",
            lambda: [view.apply(e, n.id) for e, n in zip(events, read, strict=True)],
        )
        return timings
    finally:
        ledger.close()


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    with fresh_database(args.pg) as url, tempfile.TemporaryDirectory() as keys:
        cpu, signing, statuses = asyncio.run(request_cpu(_settings(url, Path(keys)), args.requests))
        print(f"token request, in process ({statuses}): {cpu:6.1f} µs CPU per token")
        print(f"  of which ES256 signing:                 {signing:6.1f} µs")
    with fresh_database(args.pg) as url:
        for label, micros in follower_cpu(url, args.events).items():
            print(f"per token afterwards, {label:<20} {micros:6.1f} µs CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
