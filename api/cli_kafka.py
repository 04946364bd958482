"""The Kafka side of the command line: the embedded broker for `serve`, and `keyledger relay`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from adapters.kafka import EmbeddedBroker, port_open
from adapters.relay_store import LostLock, relay_status, reset_position
from api.bootstrap import build_relay, open_ledger, prepare, relay_name
from api.settings import Settings

log = logging.getLogger("keyledger")


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


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


def cmd_relay(args: argparse.Namespace) -> int:
    """Run the audit relay alone until SIGTERM or Ctrl-C (standby while another is active)."""
    if getattr(args, "relay_command", None) == "status":
        return cmd_relay_status(args)
    settings = Settings.from_env()
    configure_logging(settings)
    if not settings.kafka_enabled:
        log.error("KEYLEDGER_KAFKA_BOOTSTRAP=off: there is no broker to relay to")
        return 2
    prepare(settings)
    asyncio.run(_relay(settings))
    return 0


async def _relay(settings: Settings) -> None:
    ledger = open_ledger(settings)
    relay = build_relay(settings, ledger)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, relay.stop)
    log.info(
        "audit relay: %s to %s, topic %s (standby while another relay is active)",
        settings.database_url.split("@")[-1],
        settings.kafka_address,
        settings.audit_topic,
    )
    try:
        await relay.run()
    finally:
        ledger.close()
