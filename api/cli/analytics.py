"""`keyledger analytics issuance | top | clients`: the analytics reports on the command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from api.bootstrap import prepare
from api.cli.projections import open_ledger_here
from api.cli.services import configure_logging
from api.settings import Settings
from api.usecases.analytics import AnalyticsKeeper, AnalyticsReports, refresh
from api.usecases.timestamps import parse_rfc3339

log = logging.getLogger("keyledger")


def _window(args: argparse.Namespace, default: timedelta) -> tuple[datetime, datetime]:
    until = parse_rfc3339(args.until) if args.until else datetime.now(UTC)
    return (parse_rfc3339(args.since) if args.since else until - default), until


def _report(args: argparse.Namespace, make: Any) -> dict[str, Any]:
    with open_ledger_here() as ledger:
        refresh(ledger)  # up to date here, unless a running server keeps the table
        report: dict[str, Any] = make(AnalyticsReports(ledger))
    return report


def _print(
    args: argparse.Namespace, report: dict[str, Any], table: Table, rows: list[list[str]]
) -> int:
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)
    return 0


def cmd_issuance(args: argparse.Namespace) -> int:
    default = timedelta(hours=24) if args.granularity == "hour" else timedelta(days=30)
    since, until = _window(args, default)
    report = _report(args, lambda r: r.issuance(args.granularity, since, until, args.client))
    rows = [
        [
            b["bucket"],
            b["client_name"] or "?",
            b["client_id"],
            str(b["issued"]),
            str(b["revoked"]),
            " ".join(f"{k}={v}" for k, v in b["scopes"].items()),
            " ".join(f"{k}={v}" for k, v in b["audiences"].items()),
        ]
        for b in report["buckets"]
    ]
    table = Table(
        args.granularity,
        "client",
        "client_id",
        "issued",
        "revoked",
        "scopes",
        "audiences",
        box=None,
    )
    return _print(args, report, table, rows)


def cmd_top(args: argparse.Namespace) -> int:
    since, until = _window(args, timedelta(hours=24))
    report = _report(args, lambda r: r.top(since, until, args.limit))
    rows = [[c["client_name"] or "?", c["client_id"], str(c["issued"])] for c in report["clients"]]
    return _print(args, report, Table("client", "client_id", "issued", box=None), rows)


def cmd_clients(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    rotation = args.rotation_days or settings.rotation_policy_days
    dormant = args.dormant_days or settings.dormant_days
    report = _report(args, lambda r: r.clients(datetime.now(UTC), rotation, dormant))
    rows = [
        [
            c["name"],
            c["client_id"],
            c["status"],
            f"{c['secret_age_days']:.1f}" + (" ROTATE" if c["rotation_due"] else ""),
            (c["last_token_at"] or "never") + (" DORMANT" if c["dormant"] else ""),
            str(c["tokens_issued"]),
        ]
        for c in report["clients"]
    ]
    by_status = ", ".join(f"{k} {v}" for k, v in report["by_status"].items())
    table = Table(
        "client",
        "client_id",
        "status",
        "secret age (days)",
        "last token",
        "issued",
        box=None,
        title=f"clients: {by_status}",
    )
    return _print(args, report, table, rows)


def cmd_keep(args: argparse.Namespace) -> int:
    """Keep the analytics table (when `serve` does not: KEYLEDGER_ANALYTICS_IN_SERVE=false)."""
    settings = Settings.from_env()
    configure_logging(settings)
    prepare(settings)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    with open_ledger_here() as ledger:
        keeper = AnalyticsKeeper(ledger, interval=settings.analytics_interval)
        keeper.start()
        log.info("keeping the analytics table (one keeper at a time; others stand by)")
        stopped.wait()
        keeper.stop()
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    analytics = commands.add_parser("analytics", help="token issuance, secret age, dormant clients")
    sub = analytics.add_subparsers(dest="analytics_command", required=True)
    issuance = sub.add_parser(
        "issuance", help="tokens issued and revoked per client per hour or day"
    )
    issuance.add_argument("--granularity", choices=["hour", "day"], default="hour")
    issuance.add_argument("--client", metavar="CLIENT_ID")
    top = sub.add_parser("top", help="the clients that got the most tokens")
    top.add_argument("--limit", type=int, default=10)
    for parser in (issuance, top):
        parser.add_argument("--since", metavar="RFC3339", help="default: 24 h (30 d by day) ago")
        parser.add_argument("--until", metavar="RFC3339", help="default: now")
    clients = sub.add_parser(
        "clients", help="clients by status; secret age against the rotation policy; dormant ones"
    )
    clients.add_argument("--rotation-days", type=int, help="default KEYLEDGER_ROTATION_POLICY_DAYS")
    clients.add_argument("--dormant-days", type=int, help="default KEYLEDGER_DORMANT_DAYS")
    for parser, func in ((issuance, cmd_issuance), (top, cmd_top), (clients, cmd_clients)):
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(func=func)
    keep = sub.add_parser(
        "keep", help="follow the log into the analytics table, as its own process (until SIGTERM)"
    )
    keep.set_defaults(func=cmd_keep)
