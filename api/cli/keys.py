"""`keyledger keys list | rotate`: the server's signing keys, through the admin API."""

from __future__ import annotations

from typing import Any

import click

from api.cli import options as o
from api.cli.output import emit_ids, emit_json, table
from api.cli.remote import AdminApi

HEADERS = ["kid", "alg", "status", "signs from", "retires", "leaves the JWKS"]


@click.group(help=f"The signing keys: list and rotate. {o.REMOTE}")
def keys() -> None:
    pass


def show_keys(rows: list[dict[str, Any]], quiet: bool) -> None:
    if quiet:
        emit_ids(r["kid"] for r in rows)
        return
    cells = [
        [r["kid"], r["alg"], r["status"], r["activates_at"], r["retires_at"], r["unpublished_at"]]
        for r in rows
    ]
    table(HEADERS, cells, ids=["kid"])


@keys.command(
    "list",
    short_help="Every signing key and its turn.",
    help="Every signing key: its status, when it signs, retires and leaves the JWKS.",
    epilog=o.example("keyledger keys list", "keyledger keys list --json"),
)
@o.as_json
@o.quiet
@o.remote
def list_keys(api: AdminApi, as_json: bool, quiet: bool) -> None:
    answer = api.get("/admin/keys")
    if as_json:
        emit_json(answer)
    else:
        show_keys(answer["keys"], quiet)


@keys.command(
    short_help="A new key, signing after --delay.",
    help="A new key, in the JWKS now and signing after --delay; the current one retires then.",
    epilog=o.example(
        'keyledger keys rotate --reason "quarterly"',
        'keyledger keys rotate --delay 0s --reason "key leaked"',
    ),
)
@click.option(
    "--delay",
    metavar="DURATION",
    help="before it signs: 0s, 10m, 24h (default: the server's KEYLEDGER_KEY_PREPUBLISH_SECONDS)",
)
@o.reason
@o.as_json
@o.quiet
@o.remote
def rotate(
    api: AdminApi, delay: str | None, reason: str | None, as_json: bool, quiet: bool
) -> None:
    answer = api.call("POST", "/admin/keys/rotate", body={"delay": delay, "reason": reason})
    if as_json:
        emit_json(answer)
    else:
        show_keys([answer["key"]], quiet)
