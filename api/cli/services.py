"""The Kafka side of the command line: the embedded broker for `serve`, and `keyledger relay`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol

from rich.console import Console
from rich.table import Table

from adapters.alert_store import AlertStore
from adapters.event_store import Ledger
from adapters.kafka import EmbeddedBroker, port_open
from adapters.relay_store import LostLock, relay_status, reset_position
from api import logs
from api.bootstrap import build_detector, build_relay, open_ledger, prepare, relay_name
from api.settings import Settings
from api.usecases.projection_status import projection_status
from api.usecases.timestamps import parse_rfc3339
from domain.anomaly_detection import RULES

log = logging.getLogger("keyledger")


def configure_logging(settings: Settings) -> None:
    logs.configure_logging(settings.log_level, json_lines=settings.log_format == "json")


@contextmanager
def embedded_broker(settings: Settings) -> Iterator[None]:
    """With `KEYLEDGER_KAFKA_BOOTSTRAP` unset, run the embedded broker around the server.

    The broker keeps messages in memory only, so a new one starts empty: the relay's position
    is reset and every stored event is published to it again.
    """
    if not settings.embedded_broker:
        yield
        return
    broker = EmbeddedBroker("127.0.0.1", settings.embedded_broker_port)
    if port_open(broker.host, broker.port):
        log.warning("something already listens on %s: publishing there", broker.bootstrap)
        yield
        return
    broker.start()
    log.info("embedded Kafka-protocol broker (tansu, memory only) on %s", broker.bootstrap)
    try:
        ledger = open_ledger(settings)
        try:
            reset_position(ledger, relay_name(settings))
        except LostLock as exc:
            log.warning("audit relay position not reset: %s", exc)
        finally:
            ledger.close()
        yield
    finally:
        broker.stop()


def cmd_relay_status(args: argparse.Namespace) -> int:
    """Print the relay's position and lag; exit 1 when the lag exceeds `--max-lag`."""
    settings = Settings.from_env()
    prepare(settings)
    ledger = open_ledger(settings)
    try:
        status = relay_status(ledger, relay_name(settings))
    finally:
        ledger.close()
    if args.json:
        print(json.dumps(status))
    else:
        running = "a relay is publishing" if status["relay_running"] else "no relay is running"
        print(
            f"{status['name']}: position {status['position']} of {status['head']}, "
            f"{status['lag_events']} events behind; {running}"
        )
    return 1 if args.max_lag is not None and status["lag_events"] > args.max_lag else 0


class _Service(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


def _run_service(
    without_kafka: str, build: Callable[[Settings, Ledger], _Service], started: str
) -> int:
    """Run a Kafka service of this store until SIGTERM or Ctrl-C."""
    settings = Settings.from_env()
    configure_logging(settings)
    if not settings.kafka_enabled:
        log.error("KEYLEDGER_KAFKA_BOOTSTRAP=off: %s", without_kafka)
        return 2
    prepare(settings)

    async def run() -> None:
        ledger = open_ledger(settings)
        service = build(settings, ledger)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, service.stop)
        log.info(started.format(s=settings))
        try:
            await service.run()
        finally:
            ledger.close()

    asyncio.run(run())
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
    """Run the audit relay alone (standby while another is active)."""
    if getattr(args, "relay_command", None) == "status":
        return cmd_relay_status(args)
    return _run_service(
        "there is no broker to relay to",
        build_relay,
        "audit relay: to {s.kafka_address}, topic {s.audit_topic} "
        "(standby while another relay is active)",
    )


def cmd_detect(args: argparse.Namespace) -> int:
    """Run the anomaly detector."""
    return _run_service(
        "there is no audit topic to watch",
        build_detector,
        "detector: {s.audit_topic} on {s.kafka_address}, alerts to {s.alerts_topic} "
        "(group {s.detect_group})",
    )


def cmd_alerts_list(args: argparse.Namespace) -> int:
    """Stored alerts, newest first."""
    settings = Settings.from_env()
    prepare(settings)
    since = parse_rfc3339(args.since) if args.since else None
    if args.rule is not None and args.rule not in RULES:
        raise ValueError(f"unknown rule {args.rule!r}: one of {', '.join(RULES)}")
    alerts = AlertStore(settings.database_url).alerts(since=since, rule=args.rule, limit=args.limit)
    if args.json:
        print(json.dumps([a.to_dict() for a in alerts], indent=2))
        return 0
    table = Table("last seen", "severity", "rule", "subject", "count", "summary", box=None)
    for a in alerts:
        table.add_row(
            a.last_seen.isoformat(timespec="seconds"),
            a.severity,
            a.rule,
            a.subject,
            str(a.count),
            a.summary,
        )
    Console(width=200).print(table)
    return 0


def cmd_projections_status(args: argparse.Namespace) -> int:
    """Each projection's position, the head of the event store, and the lag."""
    settings = Settings.from_env()
    prepare(settings)
    ledger = open_ledger(settings)
    try:
        rows = projection_status(ledger, relay_name(settings), datetime.now(UTC))
    finally:
        ledger.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table("projection", "position", "head", "lag (events)", "lag (s)", box=None)
    for row in rows:
        table.add_row(
            row["name"],
            str(row["position"]),
            str(row["head"]),
            str(row["lag_events"]),
            f"{row['lag_seconds']:.1f}",
        )
    Console(width=120).print(table)
    return 0
