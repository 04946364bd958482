"""`keyledger tokens show | revoke`: one access token, by its `jti`, through the admin API."""

from __future__ import annotations

from typing import Any

import click

from api.cli import options as o
from api.cli.output import confirm, emit_ids, emit_json, record
from api.cli.remote import AdminApi

JTI = "0b9f6c1e-2d7a-4f3b-8e5c-1a2b3c4d5e6f"  # the jti the examples show


@click.group(help=f"Show and revoke single tokens. {o.REMOTE}")
def tokens() -> None:
    pass


def history_text(entries: list[dict[str, Any]]) -> str:
    lines = [
        f"{e['event']} {e['at']} by {e['actor']}" + (f" ({e['reason']})" if e.get("reason") else "")
        for e in entries
    ]
    return "; ".join(lines) or "-"


def show_token(view: dict[str, Any], as_json: bool, quiet: bool) -> None:
    if as_json:
        emit_json(view)
    elif quiet:
        emit_ids([view["jti"]])
    else:
        record(view, {"history": history_text(view.get("history") or [])})


@tokens.command(
    short_help="A token's lineage, state and history.",
    help="A token's lineage (client, secret generation, client version, key), state and history.",
    epilog=o.example(f"keyledger tokens show {JTI}", f"keyledger tokens show {JTI} --json"),
)
@click.argument("jti")
@o.as_json
@o.quiet
@o.remote
def show(api: AdminApi, jti: str, as_json: bool, quiet: bool) -> None:
    show_token(api.get(f"/admin/tokens/{jti}"), as_json, quiet)


@tokens.command(
    short_help="Revoke one token (asks first).",
    help="Revoke one token (irreversible: asks first); a second revocation changes nothing.",
    epilog=o.example(f"keyledger tokens revoke {JTI} --reason leaked --yes"),
)
@click.argument("jti")
@o.reason
@o.yes
@o.as_json
@o.quiet
@o.remote
def revoke(
    api: AdminApi, jti: str, reason: str | None, yes: bool, as_json: bool, quiet: bool
) -> None:
    confirm(f"revoke token {jti}", yes=yes)
    answer = api.call("POST", f"/admin/tokens/{jti}/revoke", body={"reason": reason})
    show_token(answer, as_json, quiet)
