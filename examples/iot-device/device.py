"""A constrained device: reads a sensor and pushes telemetry with a keyledger access token.

Python's standard library only (`urllib`), so it runs on anything with a Python: no packages
to install or patch on the device.

- It keeps its token in memory and asks for a new one shortly before it expires.
- Every reading is delivered: on 429 it waits at least `Retry-After`; on 5xx, a refused
  connection or a timeout (the server restarting, the network gone) it waits with exponential
  backoff and jitter, up to `--max-backoff` seconds, then sends the same reading again.
- On 401 from the telemetry API it drops its token and gets a new one, once.
- If keyledger refuses its credentials (`invalid_client`, `invalid_scope`, `invalid_target`)
  it exits with status 2 and says so: retrying cannot fix that, re-provisioning can.

    KEYLEDGER_URL=http://127.0.0.1:8000 TELEMETRY_URL=http://127.0.0.1:8003 \\
    CLIENT_ID=... CLIENT_SECRET=... python device.py --interval 5
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

SCOPE = "telemetry:write"


class Retry(Exception):
    """Try again later: at least `after` seconds if the server said so."""

    def __init__(self, why: str, after: float = 0.0) -> None:
        super().__init__(why)
        self.after = after


class Refused(Exception):
    """keyledger will not give this device a token; retrying will not help."""


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} device: {message}", flush=True)


def call(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    """Send the request; (status, JSON body) for answers we handle, Retry for transient ones."""
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - our URLs
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        if error.code == 429 or error.code >= 500:
            retry_after = error.headers.get("Retry-After", "0")
            after = float(retry_after) if retry_after.isdigit() else 0.0
            raise Retry(f"HTTP {error.code}", after) from None
        try:
            body = json.load(error)
        except ValueError:
            body = {}
        return error.code, body
    except (urllib.error.URLError, OSError) as error:  # refused, reset, timed out, DNS
        raise Retry(f"unreachable: {getattr(error, 'reason', error)}") from None


class Device:
    def __init__(self, keyledger: str, telemetry: str, audience: str, margin: float) -> None:
        self.token_endpoint = f"{keyledger.rstrip('/')}/oauth2/token"
        self.telemetry = f"{telemetry.rstrip('/')}/telemetry"
        self.audience = audience
        self.margin = margin
        credentials = f"{urllib.parse.quote(os.environ['CLIENT_ID'], safe='')}:" + (
            urllib.parse.quote(os.environ["CLIENT_SECRET"], safe="")
        )
        self.basic = "Basic " + base64.b64encode(credentials.encode()).decode()
        self.token: str | None = None
        self.refresh_at = 0.0

    def access_token(self) -> str:
        if self.token is not None and time.monotonic() < self.refresh_at:
            return self.token
        form = {"grant_type": "client_credentials", "scope": SCOPE, "resource": self.audience}
        request = urllib.request.Request(  # noqa: S310 - our URL
            self.token_endpoint,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": self.basic},
        )
        started = time.monotonic()
        status, body = call(request)
        if status != 200:
            raise Refused(f"{body.get('error')}: {body.get('error_description', '')}")
        lifetime = float(body["expires_in"])
        self.refresh_at = started + max(lifetime - self.margin, lifetime / 20)
        self.token = body["access_token"]
        log(f"got a token for {lifetime:.0f} s")
        return self.token

    def send(self, reading: dict[str, Any]) -> None:
        """Deliver one reading (raises Retry or Refused)."""
        for _attempt in range(2):
            token = self.access_token()
            request = urllib.request.Request(  # noqa: S310 - our URL
                self.telemetry,
                data=json.dumps(reading).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            status, _body = call(request)
            if status in (200, 201):
                return
            if status != 401:
                raise Refused(f"the telemetry API answered {status}")
            self.token = None  # revoked, or signed by a key the API has not seen: a new one
        raise Refused("the telemetry API refuses even a new token")


def backoff(attempt: int, at_least: float, cap: float) -> float:
    """Full jitter (a random wait up to 0.5 s * 2^attempt, at most `cap`), never less than
    the server asked for, so a fleet of devices does not come back all at once."""
    return max(at_least, random.uniform(0, min(cap, 0.5 * 2**attempt)))  # noqa: S311


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between readings")
    parser.add_argument("--count", type=int, default=0, help="stop after N readings (0: never)")
    parser.add_argument("--max-backoff", type=float, default=60.0)
    args = parser.parse_args()
    device = Device(
        os.environ.get("KEYLEDGER_URL", "http://127.0.0.1:8000"),
        os.environ.get("TELEMETRY_URL", "http://127.0.0.1:8003"),
        os.environ.get("TELEMETRY_AUDIENCE", "https://telemetry.internal"),
        float(os.environ.get("TOKEN_REFRESH_MARGIN", "30")),
    )
    seq = 0
    while args.count == 0 or seq < args.count:
        reading = {"seq": seq, "temperature": round(20 + random.gauss(0, 1.5), 2)}
        attempt = 0
        while True:
            try:
                device.send(reading)
                break
            except Retry as transient:
                wait = backoff(attempt, transient.after, args.max_backoff)
                log(f"{transient}; retrying reading {seq} in {wait:.1f} s")
                time.sleep(wait)
                attempt += 1
            except Refused as fatal:
                log(f"giving up: {fatal}")
                return 2
        seq += 1
        time.sleep(args.interval)
    log(f"sent {seq} readings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
