"""The `keyledger` command line: serve, and admin commands that act on the database directly."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from adapters.event_store import NotInstalled
from api.bootstrap import prepare, serve
from api.cli import analytics as cli_analytics
from api.cli import clients as c
from api.cli import keys as cli_keys
from api.cli import projections as cli_projections
from api.cli.services import (
    cmd_alerts_list,
    cmd_detect,
    cmd_projections_status,
    cmd_relay,
    configure_logging,
    embedded_broker,
)
from api.settings import Settings, SettingsError
from api.usecases.client_admin import ClientNotFound, ConcurrentChange
from api.usecases.projection_rebuild import RebuildRefused
from api.usecases.revocation import TokenNotFound
from domain.client import AUTH_METHODS, CLIENT_SECRET_BASIC, ClientCommandRejected
from domain.client_settings import DEFAULT_TOKEN_TTL, InvalidClientSettings
from domain.installation import WrongInstallationSecret
from domain.signing_keys import SigningKeyRejected


def _cmd_serve(args: argparse.Namespace) -> int:
    for name in ("host", "port", "workers"):
        if getattr(args, name) is not None:
            os.environ[f"KEYLEDGER_{name.upper()}"] = str(getattr(args, name))
    settings = Settings.from_env()
    configure_logging(settings)
    prepare(settings, create=True)
    with embedded_broker(settings):
        serve(settings)
    return 0


def _common(parser: argparse.ArgumentParser, *, json: bool = True) -> argparse.ArgumentParser:
    parser.add_argument("--reason", help="why (recorded in the client's history)")
    if json:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    clients = commands.add_parser("clients", help="register, change and inspect clients")
    sub = clients.add_subparsers(dest="clients_command", required=True)

    register = _common(
        sub.add_parser("register", help="register a client; prints its secret once"), json=False
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
    register.add_argument(
        "--default-audience",
        metavar="URL",
        help="the aud of tokens whose request names no resource (one of the --audience URLs)",
    )
    register.add_argument(
        "--auth-method",
        choices=AUTH_METHODS,
        default=CLIENT_SECRET_BASIC,
        help="client_secret_basic (a generated secret, also usable as client_secret_post) or "
        "private_key_jwt (RFC 7523: signed assertions, keys from --jwks-file)",
    )
    register.add_argument(
        "--jwks-file", metavar="FILE", help="the client's public keys, a JWK Set (JSON; - : stdin)"
    )
    output = register.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help='print {"client_id": ..., "client_secret": ...}'
    )
    output.add_argument("--export", action="store_true", help="print a shell export line")
    register.set_defaults(func=c.cmd_register)

    list_ = sub.add_parser("list", help="list clients")
    list_.add_argument(
        "--as-of-copy",
        metavar="COPY",
        help="from a point-in-time copy (keyledger projections rebuild clients --until T)",
    )
    list_.add_argument("--json", action="store_true")
    list_.set_defaults(func=c.cmd_list)

    show = sub.add_parser("show", help="show one client, now or as it was at --at")
    show.add_argument("client_id")
    show.add_argument("--at", metavar="RFC3339", help="e.g. 2026-11-20T10:00Z")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=c.cmd_show)

    history = sub.add_parser(
        "history", help="every change: time, actor, event, what changed, reason"
    )
    history.add_argument("client_id")
    history.add_argument("--json", action="store_true")
    history.set_defaults(func=c.cmd_history)

    keys = _common(
        sub.add_parser("replace-keys", help="replace a private_key_jwt client's public keys")
    )
    keys.add_argument("client_id")
    keys.add_argument("--jwks-file", required=True, metavar="FILE", help="a JWK Set (- : stdin)")
    keys.set_defaults(func=c.cmd_replace_keys)

    rotate = _common(
        sub.add_parser(
            "rotate-secret", help="new secret (shown once); the old one works for --grace"
        )
    )
    rotate.add_argument("client_id")
    rotate.add_argument(
        "--grace", default="24h", help="how long the previous secret keeps working: 0s to 30d"
    )
    rotate.set_defaults(func=c.cmd_rotate)

    for name, func, help_ in [
        (
            "revoke-previous-secret",
            c.cmd_revoke_previous,
            "end the previous secret's grace period now",
        ),
        ("reactivate", c.cmd_reactivate, "let a suspended client authenticate again"),
        ("delete", c.cmd_delete, "decommission: never authenticates again; history stays"),
    ]:
        parser = _common(sub.add_parser(name, help=help_))
        parser.add_argument("client_id")
        parser.set_defaults(func=func)

    suspend = sub.add_parser(
        "suspend", help="refuse the client until reactivated (on every replica within 1 s)"
    )
    suspend.add_argument("client_id")
    suspend.add_argument("--reason", required=True)
    suspend.add_argument("--json", action="store_true")
    suspend.set_defaults(func=c.cmd_suspend)

    set_scopes = _common(
        sub.add_parser("set-scopes", help="replace the allowed (and default) scopes")
    )
    set_scopes.add_argument("client_id")
    set_scopes.add_argument("--scope", required=True)
    set_scopes.add_argument("--default-scope", help="default: the old defaults that stay allowed")
    set_scopes.set_defaults(func=c.cmd_set_scopes)

    ttl = _common(sub.add_parser("set-token-ttl", help="token lifetime in seconds, 60 to 86400"))
    ttl.add_argument("client_id")
    ttl.add_argument("seconds", type=int)
    ttl.set_defaults(func=c.cmd_set_token_ttl)

    quota = _common(
        sub.add_parser(
            "set-quota", help="most tokens per minute and per day (an omitted one: no limit)"
        )
    )
    quota.add_argument("client_id")
    quota.add_argument("--per-minute", type=int, metavar="N")
    quota.add_argument("--per-day", type=int, metavar="N")
    quota.set_defaults(func=c.cmd_set_quota)

    audiences = _common(sub.add_parser("set-audiences", help="replace the allowed audiences"))
    audiences.add_argument("client_id")
    audiences.add_argument("audiences", nargs="*", metavar="URL")
    audiences.add_argument(
        "--default", metavar="URL", help="the default audience (default: the old one, if kept)"
    )
    audiences.set_defaults(func=c.cmd_set_audiences)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keyledger", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    serve.set_defaults(func=_cmd_serve)

    relay = commands.add_parser(
        "relay",
        help="publish the event log to the Kafka audit topic (one active, others stand by)",
    )
    relay.set_defaults(func=cmd_relay)
    relay_sub = relay.add_subparsers(dest="relay_command")
    status = relay_sub.add_parser("status", help="the relay's position and lag behind the log")
    status.add_argument("--json", action="store_true")
    status.add_argument(
        "--max-lag", type=int, metavar="EVENTS", help="exit 1 when further behind (health checks)"
    )

    detect = commands.add_parser(
        "detect", help="watch the audit topic for attacks and raise alerts (a consumer group)"
    )
    detect.set_defaults(func=cmd_detect)
    alerts = commands.add_parser("alerts", help="alerts the detector raised")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    alerts_list = alerts_sub.add_parser("list", help="stored alerts, newest first")
    alerts_list.add_argument("--since", metavar="RFC3339", help="only alerts last seen since")
    alerts_list.add_argument("--rule", help="only this rule (e.g. brute_force)")
    alerts_list.add_argument("--limit", type=int, default=100)
    alerts_list.add_argument("--json", action="store_true")
    alerts_list.set_defaults(func=cmd_alerts_list)

    projections = commands.add_parser("projections", help="the read models and their lag")
    projections_sub = projections.add_subparsers(dest="projections_command", required=True)
    projections_status = projections_sub.add_parser(
        "status", help="each projection's position, the log's head, lag in events and seconds"
    )
    projections_status.add_argument("--json", action="store_true")
    projections_status.set_defaults(func=cmd_projections_status)
    cli_projections.add_commands(projections_sub)
    cli_analytics.add_commands(commands)

    _client_commands(commands)
    cli_keys.add_commands(commands)

    tokens = commands.add_parser("tokens", help="revoke tokens")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True)
    revoke = _common(
        tokens_sub.add_parser("revoke", help="void a client's tokens issued before a time")
    )
    revoke.add_argument("jti", nargs="?", help="one token; or use --client for a client's tokens")
    revoke.add_argument("--client", metavar="CLIENT_ID")
    revoke.add_argument("--before", metavar="RFC3339", help="default: now")
    revoke.add_argument(
        "--secret-generation", type=int, metavar="N", help="only tokens minted with that secret"
    )
    revoke.set_defaults(func=c.cmd_revoke_tokens)
    show_token = tokens_sub.add_parser("show", help="a token's lineage, state and history")
    show_token.add_argument("jti")
    show_token.add_argument("--json", action="store_true")
    show_token.set_defaults(func=c.cmd_show_token)

    admin = commands.add_parser("admin", help="administration of keyledger itself")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    bootstrap = admin_sub.add_parser(
        "bootstrap", help="create the first admin client; prints its secret once"
    )
    bootstrap.add_argument("--reason", help="why (recorded in the client's history)")
    bootstrap_output = bootstrap.add_mutually_exclusive_group()
    bootstrap_output.add_argument("--json", action="store_true")
    bootstrap_output.add_argument(
        "--export", action="store_true", help="print export ADMIN_ID=... ADMIN_SECRET=..."
    )
    bootstrap.set_defaults(export_prefix="ADMIN")
    bootstrap.add_argument("--name", default="keyledger-admin")
    bootstrap.add_argument(
        "--force", action="store_true", help="add one even if an admin client exists"
    )
    bootstrap.set_defaults(func=c.cmd_bootstrap)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except (ClientNotFound, TokenNotFound) as exc:
        print(f"keyledger: error: {exc}", file=sys.stderr)
    except ConcurrentChange as exc:
        print(f"keyledger: error: conflict: {exc}", file=sys.stderr)
    except (
        c.CliError,
        RebuildRefused,
        ClientCommandRejected,
        SigningKeyRejected,
        InvalidClientSettings,
        SettingsError,
        NotInstalled,
        WrongInstallationSecret,
        ValueError,
    ) as exc:
        print(f"keyledger: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(f"keyledger: error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
