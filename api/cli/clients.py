"""`keyledger clients ...`: register, change and inspect clients through the admin API."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from api.cli import options as o
from api.cli.output import CliError, emit, emit_ids, emit_json, record, table, text
from api.cli.remote import AdminApi

BASIC, KEY_JWT = "client_secret_basic", "private_key_jwt"
PATH = "/admin/clients"


@click.group(help=f"Register, change and inspect clients. {o.REMOTE}")
def clients() -> None:
    pass


def scopes(value: str | None) -> list[str] | None:
    return None if value is None else [s for s in value.split(" ") if s]


def read_jwks(path: str) -> Any:
    """A JWK Set from a JSON file (`-`: standard input)."""
    try:
        content = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        return json.loads(content)
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the JWK Set {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None


def secrets_text(secrets: list[dict[str, Any]]) -> str:
    return ", ".join(f"#{s['generation']} (expires {s['expires_at'] or 'never'})" for s in secrets)


def keys_text(jwks: dict[str, Any] | None) -> str:
    keys = (jwks or {}).get("keys", [])
    return ", ".join(f"{k.get('kid') or '(no kid)'} ({k.get('kty')})" for k in keys) or "-"


def show_client(view: dict[str, Any], as_json: bool = False, quiet: bool = False) -> None:
    """A client as fields (or its JSON, or only its id)."""
    if as_json:
        emit_json(view)
    elif quiet:
        emit_ids([view["client_id"]])
    else:
        special = {"secrets": secrets_text(view.get("secrets") or [])}
        if "jwks" in view:
            special["jwks"] = keys_text(view["jwks"])
        record(view, special)


def show_credentials(answer: dict[str, Any], as_json: bool, export: bool) -> None:
    """A new client id with its secret: printed once, never stored here."""
    if as_json and export:
        raise click.UsageError("--json and --export are alternatives")
    client_id, secret = answer["client_id"], answer.get("client_secret")
    if as_json:
        emit_json(answer)
    elif export:
        line = f"export CLIENT_ID={shlex.quote(client_id)}"
        emit(line + (f" CLIENT_SECRET={shlex.quote(secret)}" if secret else ""))
    else:
        emit(f"client_id:     {client_id}")
        if secret:
            emit(f"client_secret: {secret}")
    if not as_json and not export:
        note = "The secret is shown only this once: store it now."
        click.echo(
            note if secret else "It authenticates with private_key_jwt: no secret.", err=True
        )


@clients.command(
    help="Register a client; its secret is printed once.",
    epilog=o.example(
        'keyledger clients register --name billing-job --scope "invoices:read invoices:write"',
        'eval "$(keyledger clients register --name job --scope jobs:run --export)"',
        "keyledger clients register --name payments --scope pay --jwks-file jwks.json",
    ),
)
@click.option("--name", required=True, help="a name people recognise")
@click.option("--scope", required=True, help='allowed scopes, space-separated: "a b"')
@click.option("--default-scope", help="scopes granted when a request names none (default: all)")
@click.option("--token-ttl", type=int, metavar="SECONDS", help="60 to 86400 (default 300)")
@click.option("--audience", multiple=True, metavar="URL", help="an allowed audience (repeatable)")
@click.option("--default-audience", metavar="URL", help="the aud when a request names none")
@click.option(
    "--auth-method",
    type=click.Choice([BASIC, KEY_JWT]),
    help="client_secret_basic (a generated secret; the default) or private_key_jwt "
    "(RFC 7523: signed assertions, keys from --jwks-file)",
)
@click.option("--jwks-file", metavar="FILE", help="the client's public keys (JWK Set; - : stdin)")
@o.reason
@o.as_json
@click.option(
    "--export", is_flag=True, help="print a shell line: export CLIENT_ID=… CLIENT_SECRET=…"
)
@o.remote
def register(
    api: AdminApi,
    name: str,
    scope: str,
    default_scope: str | None,
    token_ttl: int | None,
    audience: tuple[str, ...],
    default_audience: str | None,
    auth_method: str | None,
    jwks_file: str | None,
    reason: str | None,
    as_json: bool,
    export: bool,
) -> None:
    method = auth_method or (KEY_JWT if jwks_file else BASIC)
    if (method == KEY_JWT) != (jwks_file is not None):
        raise click.UsageError(
            "--jwks-file goes with --auth-method private_key_jwt, and only with it"
        )
    body = {
        "name": name,
        "allowed_scopes": scopes(scope),
        "default_scopes": scopes(default_scope),
        "token_ttl": token_ttl,
        "audiences": list(audience),
        "default_audience": default_audience,
        "token_endpoint_auth_method": method,
        "jwks": read_jwks(jwks_file) if jwks_file else None,
        "reason": reason,
    }
    show_credentials(api.call("POST", PATH, body=body), as_json, export)


@clients.command(
    "list",
    help="List clients, now or from a point-in-time copy.",
    epilog=o.example(
        "keyledger clients list",
        "keyledger clients list -q | head -1",
        "keyledger clients list --as-of-copy clients@20261120T100000Z --json",
    ),
)
@click.option(
    "--as-of-copy", metavar="COPY", help="a copy made by `keyledger projections rebuild --until`"
)
@o.as_json
@o.quiet
@o.remote
def list_clients(api: AdminApi, as_of_copy: str | None, as_json: bool, quiet: bool) -> None:
    views: list[dict[str, Any]] = api.get(PATH, as_of_copy=as_of_copy)
    if as_json:
        emit_json(views)
    elif quiet:
        emit_ids(v["client_id"] for v in views)
    else:
        rows = [
            [
                v["client_id"],
                v["name"],
                v["status"],
                v["allowed_scopes"],
                v["token_ttl"],
                v["registered_at"],
            ]
            for v in views
        ]
        headers = ["client_id", "name", "status", "scopes", "ttl", "registered"]
        table(headers, rows, ids=["client_id", "registered"])


@clients.command(
    help="Show one client, now or as it was at --at.",
    epilog=o.example(
        "keyledger clients show 3f0c1e9a-5b8d-4c2e-9a51-0d6f1b2c3d4e",
        "keyledger clients show 3f0c1e9a-5b8d-4c2e-9a51-0d6f1b2c3d4e --at 2026-11-20T10:00Z",
    ),
)
@click.argument("client_id")
@click.option("--at", metavar="RFC3339", help="a past moment, e.g. 2026-11-20T10:00Z")
@o.as_json
@o.quiet
@o.remote
def show(api: AdminApi, client_id: str, at: str | None, as_json: bool, quiet: bool) -> None:
    show_client(api.get(f"{PATH}/{client_id}", at=at), as_json, quiet)


@clients.command(
    short_help="Every change: time, actor, event, what, why.",
    help="Every change to a client: time, actor, event, what changed, reason.",
    epilog=o.example("keyledger clients history 3f0c1e9a-5b8d-4c2e-9a51-0d6f1b2c3d4e"),
)
@click.argument("client_id")
@o.as_json
@o.remote
def history(api: AdminApi, client_id: str, as_json: bool) -> None:
    entries: list[dict[str, Any]] = api.get(f"{PATH}/{client_id}/history")
    if as_json:
        emit_json(entries)
        return
    rows = [
        [e["version"], e["at"], e["actor"], e["event"], text(e["changes"]), e["reason"]]
        for e in entries
    ]
    table(["version", "time", "actor", "event", "what changed", "reason"], rows, ids=["time"])
