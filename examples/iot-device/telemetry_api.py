"""The cloud side of the IoT example: an API that receives devices' telemetry.

`POST /telemetry` with a JSON reading `{"seq": 7, "temperature": 21.5}` and a keyledger access
token with scope `telemetry:write` for audience `https://telemetry.internal`. The device is the
token's `client_id`, never something the body claims.

- A reading is stored once per (device, seq), however often it is sent, so a device may
  resend whatever it is unsure about.
- Each device gets a bucket of `--burst` requests refilled at `--rate` per second; beyond it
  the answer is 429 with `Retry-After`. A device that comes back before that time is counted
  (`ignored Retry-After` in the log).
- While the keys cannot be fetched from keyledger (it is down and this API just started), the
  answer is 503 with `Retry-After`: the device should try again, its token is not at fault.

Standard library plus PyJWT:

    KEYLEDGER_URL=http://127.0.0.1:8000 python telemetry_api.py --port 8003 --store readings.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt

AUDIENCE = os.environ.get("TELEMETRY_AUDIENCE", "https://telemetry.internal")
SCOPE = "telemetry:write"


class Telemetry:
    """Validation, per-device limits and storage, shared by the request threads."""

    def __init__(self, keyledger_url: str, store: Path, burst: float, rate: float) -> None:
        self.keyledger_url = keyledger_url.rstrip("/")
        self.store = store
        self.burst, self.rate = burst, rate
        self.lock = threading.Lock()
        self.seen: set[tuple[str, int]] = set()
        if store.exists():
            for line in store.read_text().splitlines():
                row = json.loads(line)
                self.seen.add((row["device"], row["seq"]))
        self.buckets: dict[str, tuple[float, float]] = {}  # device -> (tokens, at)
        self.not_before: dict[str, float] = {}  # device -> when its Retry-After ends
        self.issuer: str | None = None
        self.jwks: jwt.PyJWKClient | None = None

    def keys(self) -> tuple[str, jwt.PyJWKClient]:
        """The issuer and key set from keyledger's metadata, fetched when first needed."""
        if self.jwks is None or self.issuer is None:
            url = f"{self.keyledger_url}/.well-known/oauth-authorization-server"
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - our config
                metadata = json.load(answer)
            self.issuer = metadata["issuer"]
            self.jwks = jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=True)
        return self.issuer, self.jwks

    def device_of(self, token: str) -> str:
        """The device (client id) a valid token speaks for; raises PermissionError if none."""
        issuer, jwks = self.keys()
        try:
            key = jwks.get_signing_key_from_jwt(token)
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["ES256", "RS256", "PS256", "EdDSA"],
                issuer=issuer,
                audience=AUDIENCE,
                options={"require": ["exp", "iss", "aud", "client_id"]},
            )
        except jwt.PyJWKClientConnectionError:
            raise
        except jwt.PyJWTError as exc:
            raise PermissionError(str(exc)) from None
        if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
            raise PermissionError("not an access token")
        if SCOPE not in str(claims.get("scope", "")).split():
            raise PermissionError(f"needs scope {SCOPE}")
        return str(claims["client_id"])

    def admit(self, device: str) -> float:
        """0 if the device may send now, else the seconds it must wait."""
        now = time.monotonic()
        with self.lock:
            if now < self.not_before.get(device, 0.0):
                print(f"ignored Retry-After device={device}", flush=True)
            tokens, at = self.buckets.get(device, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self.buckets[device] = (tokens - 1, now)
                return 0.0
            self.buckets[device] = (tokens, now)
            wait = (1 - tokens) / self.rate
            self.not_before[device] = now + wait
            return wait

    def record(self, device: str, reading: dict[str, Any]) -> bool:
        """Store the reading unless this device's `seq` is already stored; True if new."""
        key = (device, int(reading["seq"]))
        with self.lock:
            if key in self.seen:
                return False
            row = {"device": device, "seq": key[1], "temperature": reading.get("temperature")}
            with self.store.open("a") as out:
                out.write(json.dumps(row) + "\n")
            self.seen.add(key)
            return True


class Handler(BaseHTTPRequestHandler):
    telemetry: Telemetry

    def do_POST(self) -> None:
        if self.path != "/telemetry":
            return self.answer(404, {"error": "not_found"})
        kind, _, token = self.headers.get("Authorization", "").partition(" ")
        if kind.lower() != "bearer" or not token:
            return self.answer(401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})
        try:
            device = self.telemetry.device_of(token.strip())
        except PermissionError as no:
            challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            return self.answer(
                401, {"error": "invalid_token", "error_description": str(no)}, challenge
            )
        except (OSError, jwt.PyJWKClientConnectionError):
            print("503 keys unavailable", flush=True)
            return self.answer(503, {"error": "temporarily_unavailable"}, {"Retry-After": "2"})
        wait = self.telemetry.admit(device)
        if wait:
            print(f"429 device={device}", flush=True)
            retry_after = {"Retry-After": str(max(1, round(wait + 0.5)))}  # whole seconds
            return self.answer(429, {"error": "too_many_requests"}, retry_after)
        try:
            length = int(self.headers.get("Content-Length", "0"))
            reading = json.loads(self.rfile.read(min(length, 4096)))
            new = self.telemetry.record(device, reading)
        except (ValueError, TypeError, KeyError):
            return self.answer(400, {"error": "invalid_request"})
        self.answer(201 if new else 200, {"stored": new})

    def answer(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per rejection is printed above; successes are silent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--store", type=Path, default=Path("readings.jsonl"))
    parser.add_argument("--burst", type=float, default=10, help="requests a device may burst")
    parser.add_argument("--rate", type=float, default=1, help="requests per second refilled")
    args = parser.parse_args()
    Handler.telemetry = Telemetry(
        os.environ.get("KEYLEDGER_URL", "http://127.0.0.1:8000"), args.store, args.burst, args.rate
    )
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"telemetry API on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
