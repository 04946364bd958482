"""The `keyledger keys` commands: the server's signing keys, listed and rotated."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.clock import SystemClock
from api.bootstrap import key_admin, open_ledger
from api.cli.clients import actor
from api.settings import Settings
from api.usecases.client_admin import parse_duration


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="the signing keys: list and rotate")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    list_ = sub.add_parser("list", help="every signing key, its status and its turn")
    list_.add_argument("--json", action="store_true")
    list_.set_defaults(func=cmd_list)
    rotate = sub.add_parser(
        "rotate", help="a new key, in the JWKS now, signing after --delay; the old one retires"
    )
    rotate.add_argument(
        "--delay",
        help="pre-publication delay before it signs (default KEYLEDGER_KEY_PREPUBLISH_SECONDS)",
    )
    rotate.add_argument("--reason", help="why (recorded in the key's event)")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(func=cmd_rotate)


def _print(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("kid", "alg", "status", "signs from", "retires", "leaves the JWKS")
    for r in rows:
        table.add_row(
            r["kid"],
            r["alg"],
            r["status"],
            r["activates_at"],
            r["retires_at"] or "",
            r["unpublished_at"] or "",
        )
    Console().print(table)


def cmd_list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    ledger = open_ledger(settings)
    try:
        admin = key_admin(settings, ledger, SystemClock())
        admin.ensure(settings.keys_dir)
        _print(args, admin.listing())
    finally:
        ledger.close()
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    delay = (
        parse_duration(args.delay)
        if args.delay is not None
        else parse_duration(str(settings.key_prepublish_seconds))
    )
    ledger = open_ledger(settings)
    try:
        admin = key_admin(settings, ledger, SystemClock())
        admin.ensure(settings.keys_dir)
        added = admin.rotate(delay=delay, actor=actor(), reason=args.reason)
        _print(args, [row for row in admin.listing() if row["kid"] == added.kid])
    finally:
        ledger.close()
    return 0
