"""Print the alerts `keyledger detect` raises, each once, as they arrive.

Alerts are CloudEvents on `keyledger.alerts.v1` (type `keyledger.alert.raised.v1`). An alert's
`id` comes from its rule, subject and time window, so a repeat has the same `id` and is
dropped here. Each line says what happened, to whom, how often, and what to do first:

    ALERT high   brute_force         client 3f1c0a2e-…: 10 failed authentications in 60 s ...

Pipe it into your paging tool, or replace `print` with a call to it.

    python alerts_consumer.py --bootstrap 127.0.0.1:9092 --min-severity medium
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import OrderedDict
from typing import Any

from aiokafka import AIOKafkaConsumer
from kafka_options import add_security_options, security_kwargs

SEVERITIES = ["low", "medium", "high"]

FIRST_STEP = {
    "brute_force": "check the source IPs; suspend the client if the guesses came close",
    "issuance_spike": "is the client caching its token? ask its owner",
    "retired_secret_use": "an old secret is in use: find where it leaked, revoke its tokens",
    "scope_probing": "a client asks for scopes it never had: who runs it?",
    "inactive_client_use": "a suspended or deleted client still tries: stop it at its host",
    "new_source_network": "a client calls from a network it never used: expected?",
    "ledger_inconsistent": "history was rewritten or a checkpoint forged: compare your kept "
    "checkpoints, run `keyledger ledger verify`",
    "ledger_tampered": "the store was edited underneath: `keyledger ledger verify` names the "
    "event; restore it from a backup or the audit topic",
}


def describe(alert: dict[str, Any]) -> str:
    data = alert["data"]
    first_step = FIRST_STEP.get(data["rule"], "investigate")
    return (
        f"ALERT {data['severity']:<6} {data['rule']:<19} {data['subject_kind']} {data['subject']}"
        f": {data['summary']} (from {data['first_seen'][:19]}) → {first_step}"
    )


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
    seen: OrderedDict[str, None] = OrderedDict()
    floor = SEVERITIES.index(args.min_severity)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=int(args.idle_exit * 1000) or 1000)
            if not batches and args.idle_exit:
                return
            for messages in batches.values():
                for message in messages:
                    try:
                        alert = json.loads(message.value)
                        if alert["id"] in seen:
                            continue
                        seen[alert["id"]] = None
                        if len(seen) > 10_000:
                            seen.popitem(last=False)
                        if SEVERITIES.index(alert["data"]["severity"]) >= floor:
                            print(describe(alert), flush=True)
                    except (ValueError, KeyError, TypeError) as bad:
                        print(f"(unreadable alert at offset {message.offset}: {bad})", flush=True)
            await consumer.commit()
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="keyledger.alerts.v1")
    parser.add_argument("--group", default="security-team-alerts")
    parser.add_argument("--min-severity", choices=SEVERITIES, default="low")
    parser.add_argument("--idle-exit", type=float, default=0, help="stop after N quiet seconds")
    parser.add_argument("--session-timeout-ms", type=int, default=10_000)
    add_security_options(parser)
    args = parser.parse_args()
    args.kafka_security = security_kwargs(parser, args)
    asyncio.run(consume(args))


if __name__ == "__main__":
    main()
