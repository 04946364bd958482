"""Print keyledger's audit topic as one human line per event, each event once.

Every change to a client, every token issued or revoked, and every failed authentication
arrives on `keyledger.audit.v1` as a CloudEvents JSON message. Delivery is at least once: after
a relay crash or failover a few messages can arrive twice, with the same `id`. This consumer
drops those repeats (it remembers the last `--remember` ids) and prints the rest:

    2026-11-22 10:00:09  AUTHENTICATION FAILED    billing-job (3f1c0a2e…)  wrong_secret  ...

(the README shows more).

It is a consumer group (`--group`): a second copy shares the partitions, and a restart goes on
from the last committed offset. The first run of a new group reads the topic from the start.

    python audit_consumer.py --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from kafka_options import add_security_options, security_kwargs


class SeenIds:
    """The last `capacity` message ids: enough, since a repeat follows its original closely."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, message_id: str) -> bool:
        if message_id in self.ids:
            return False
        self.ids[message_id] = None
        if len(self.ids) > self.capacity:
            self.ids.popitem(last=False)
        return True


def _words(values: list[str] | None) -> str:
    return " ".join(values or []) or "-"


def times(data: dict[str, Any]) -> str:
    """A security observation stands for `count` requests of one second (absent: 1)."""
    count = data.get("count", 1)
    return f" x{count}" if count != 1 else ""


# For each event type: the label, and what matters about it (from the message's `data`).
LINES: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "client.registered": (
        "client registered",
        lambda d: (
            f"scopes {_words(d['allowed_scopes'])}"
            + ("  signs with its keys" if d.get("auth_method") == "private_key_jwt" else "")
        ),
    ),
    "client.keys_replaced": (
        "client keys replaced",
        lambda d: f"kids {_words([k.get('kid', '-') for k in d['jwks']])}",
    ),
    "client.secret_rotated": (
        "secret rotated",
        lambda d: f"generation {d['generation']}, old one valid until {d['previous_expires_at']}",
    ),
    "client.previous_secret_revoked": (
        "old secret revoked",
        lambda d: f"generation {d['generation']}",
    ),
    "client.suspended": ("client suspended", lambda d: ""),
    "client.reactivated": ("client reactivated", lambda d: ""),
    "client.scopes_changed": ("scopes changed", lambda d: f"scopes {_words(d['allowed_scopes'])}"),
    "client.audiences_changed": ("audiences changed", lambda d: _words(d["audiences"])),
    "client.token_lifetime_changed": ("token lifetime changed", lambda d: f"{d['token_ttl']} s"),
    "client.quotas_changed": (
        "quotas changed",
        lambda d: f"{d['tokens_per_minute']}/min {d['tokens_per_day']}/day",
    ),
    "client.renamed": ("client renamed", lambda d: ""),
    "client.tokens_revoked": ("tokens revoked", lambda d: f"issued before {d['cutoff']}"),
    "client.deleted": ("client deleted", lambda d: ""),
    "token.issued": (
        "token issued",
        lambda d: (
            f"scope {_words(d['scopes'])}  aud {_words(d['audience'])}  from {d['source_ip']}"
        ),
    ),
    "token.revoked": ("token revoked", lambda d: ""),
    "installation.initialised": (
        "installation set up",
        lambda d: f"key-encryption key {d['kek_fingerprint']}, pepper {d['pepper_fingerprint']}",
    ),
    "signing_keys.started": ("signing keys started", lambda d: ""),
    "signing_keys.key_generated": (
        "SIGNING KEY ADDED",
        lambda d: f"kid {d['kid']} {d['alg']}, signs from {d['activates_at']}",
    ),
    "signing_keys.key_retired": (
        "SIGNING KEY RETIRED",
        lambda d: f"kid {d['kid']} stops at {d['retires_at']}, leaves JWKS {d['unpublished_at']}",
    ),
    "ledger.keys_started": ("ledger keys started", lambda d: ""),
    "ledger.key_generated": (
        "LEDGER KEY ADDED",
        lambda d: f"{d['name']}+{d['key_id']}: checkpoints are signed with it from now on",
    ),
    "ledger.checkpoint_signed": (
        "ledger checkpoint",
        lambda d: f"size {d['size']} root {d['root']} (keep the note: it proves the history)",
    ),
    "ledger.checkpoint_requested": ("checkpoint requested", lambda d: ""),
    "security.authentication_failed": (
        "AUTHENTICATION FAILED",
        lambda d: (
            f"{d['reason']}{times(d)}  from {d['source_ip']}  "
            f"({d['user_agent'] or 'no user agent'})"
        ),
    ),
    "security.token_request_rejected": (
        "TOKEN REQUEST REJECTED",
        lambda d: (
            f"{d['error']}{times(d)}  asked {d['requested_scope'] or '-'}  from {d['source_ip']}"
        ),
    ),
    "security.quota_exceeded": ("QUOTA EXCEEDED", lambda d: f"from {d['source_ip']}{times(d)}"),
}


def describe(event: dict[str, Any], names: dict[str, str]) -> str:
    """One line for a CloudEvent from the audit topic; `names` learns client names."""
    data: dict[str, Any] = event.get("data") or {}
    kind = event["type"].removeprefix("keyledger.").removesuffix(".v1")
    client_id = str(event.get("subject") or data.get("client_id") or "")
    if kind in ("client.registered", "client.renamed"):
        names[client_id] = data["name"]
    label, detail = LINES.get(kind, (kind, lambda d: ""))
    who = f"{names.get(client_id, '?')} ({client_id[:8]}…)" if client_id else "-"
    why = f"  {data['reason']!r}" if data.get("reason") and "actor" in data else ""
    actor = f"  by {data['actor']}" if data.get("actor") else ""
    when = event["time"][:19].replace("T", " ")
    return f"{when}  {label:<24} {who}  {detail(data)}{why}{actor}".rstrip()


async def consume(args: argparse.Namespace) -> None:
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=max(100, args.session_timeout_ms // 5),
        **args.kafka_security,
    )
    await consumer.start()
    seen = SeenIds(args.remember)
    names: dict[str, str] = {}
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=int(args.idle_exit * 1000) or 1000)
            if not batches and args.idle_exit:
                return  # nothing new for --idle-exit seconds: a one-off report is done
            for messages in batches.values():
                for message in messages:
                    try:
                        event = json.loads(message.value)
                        fresh = seen.first_time(event["id"])
                        line = describe(event, names) if fresh else None
                    except (ValueError, KeyError, TypeError) as bad:
                        line = f"(unreadable message at offset {message.offset}: {bad})"
                    if line:
                        print(line, flush=True)
            await consumer.commit()  # after printing: a crash repeats lines, never skips
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="keyledger.audit.v1")
    parser.add_argument("--group", default="security-team-audit")
    parser.add_argument("--remember", type=int, default=100_000, help="ids kept to drop repeats")
    parser.add_argument("--idle-exit", type=float, default=0, help="stop after N quiet seconds")
    parser.add_argument("--session-timeout-ms", type=int, default=10_000)
    add_security_options(parser)
    args = parser.parse_args()
    args.kafka_security = security_kwargs(parser, args)
    asyncio.run(consume(args))


if __name__ == "__main__":
    main()
