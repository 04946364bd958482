"""The `keyledger` command line: serve, and admin commands that act on the database directly."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.client_secrets import SecretHasher, load_or_create_pepper
from adapters.clock import SystemClock
from adapters.event_store import DatabaseUrlError
from api.bootstrap import open_ledger, prepare
from api.client_admin import current_clients, register_client
from api.settings import Settings, SettingsError
from domain.client import DEFAULT_TOKEN_TTL, ClientSettings, InvalidClientSettings


class CliError(Exception):
    """An error the CLI reports in one line with exit status 2."""


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


def _scopes(value: str | None) -> list[str] | None:
    return None if value is None else [s for s in value.split(" ") if s]


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    for name in ("host", "port", "workers"):
        if getattr(args, name) is not None:
            os.environ[f"KEYLEDGER_{name.upper()}"] = str(getattr(args, name))
    settings = Settings.from_env()
    prepare(settings)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


def _cmd_register(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    client_settings = ClientSettings.create(
        name=args.name,
        allowed_scopes=_scopes(args.scope) or [],
        default_scopes=_scopes(args.default_scope),
        token_ttl=args.token_ttl,
        audiences=args.audience or [],
    )
    hasher = SecretHasher(load_or_create_pepper(settings.keys_dir, settings.secret_pepper))
    ledger = open_ledger(settings)
    try:
        created = register_client(
            ledger, hasher, SystemClock(), client_settings, actor=_actor(), reason=args.reason
        )
    finally:
        ledger.close()
    if args.json:
        print(json.dumps({"client_id": created.client_id, "client_secret": created.client_secret}))
    elif args.export:
        print(f"export CLIENT_ID={created.client_id} CLIENT_SECRET={created.client_secret}")
    else:
        print(f"client_id:     {created.client_id}")
        print(f"client_secret: {created.client_secret}")
        print("The secret is shown only this once: store it now.", file=sys.stderr)
    return 0


def _with_clients(action: Any) -> Any:
    ledger = open_ledger(Settings.from_env())
    try:
        return action(current_clients(ledger))
    finally:
        ledger.close()


def _cmd_list(args: argparse.Namespace) -> int:
    records = _with_clients(lambda view: [r.public_view() for r in view.all()])
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    table = Table("client_id", "name", "status", "scopes", "ttl", "registered")
    for r in records:
        table.add_row(
            r["client_id"],
            r["name"],
            r["status"],
            " ".join(r["allowed_scopes"]),
            str(r["token_ttl"]),
            r["registered_at"],
        )
    Console().print(table)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    record = _with_clients(lambda view: view.get(args.client_id))
    if record is None:
        raise CliError(f"no client with id {args.client_id}")
    data = record.public_view()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    table = Table("field", "value", show_header=False)
    for key, value in data.items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        if key == "secrets":
            text = ", ".join(
                f"#{s['generation']} (expires {s['expires_at'] or 'never'})" for s in value
            )
        table.add_row(key, text)
    Console().print(table)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keyledger", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    serve.set_defaults(func=_cmd_serve)

    clients = commands.add_parser("clients", help="register and inspect clients")
    client_commands = clients.add_subparsers(dest="clients_command", required=True)

    register = client_commands.add_parser(
        "register", help="register a client; prints its secret once"
    )
    register.add_argument("--name", required=True)
    register.add_argument("--scope", required=True, help='allowed scopes, space-separated: "a b"')
    register.add_argument(
        "--default-scope", help="scopes granted when a request names none (default: all allowed)"
    )
    register.add_argument(
        "--token-ttl",
        type=int,
        default=DEFAULT_TOKEN_TTL,
        help="token lifetime in seconds, 60 to 86400",
    )
    register.add_argument(
        "--audience", action="append", metavar="URL", help="allowed audience (repeatable)"
    )
    register.add_argument("--reason")
    output = register.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help='print {"client_id": ..., "client_secret": ...}'
    )
    output.add_argument("--export", action="store_true", help="print a shell export line")
    register.set_defaults(func=_cmd_register)

    list_ = client_commands.add_parser("list", help="list clients")
    list_.add_argument("--json", action="store_true")
    list_.set_defaults(func=_cmd_list)

    show = client_commands.add_parser("show", help="show one client")
    show.add_argument("client_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_cmd_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except (CliError, InvalidClientSettings, SettingsError, DatabaseUrlError, ValueError) as exc:
        print(f"keyledger: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(f"keyledger: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
