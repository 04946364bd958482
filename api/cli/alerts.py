"""`keyledger alerts list`: the alerts the detector raised, through the admin API."""

from __future__ import annotations

import click

from api.cli import options as o
from api.cli.output import emit_ids, emit_json, table
from api.cli.remote import AdminApi


@click.group(help=f"Alerts the detector raised. {o.REMOTE}")
def alerts() -> None:
    pass


@alerts.command(
    "list",
    help="Stored alerts, newest first.",
    epilog=o.example(
        "keyledger alerts list",
        "keyledger alerts list --rule brute_force --since 2026-11-20T00:00Z --json",
    ),
)
@click.option("--since", metavar="RFC3339", help="only alerts last seen since")
@click.option("--rule", help="only this rule (e.g. brute_force)")
@click.option("--limit", type=int, default=100, show_default=True)
@o.as_json
@o.quiet
@o.remote
def list_alerts(
    api: AdminApi, since: str | None, rule: str | None, limit: int, as_json: bool, quiet: bool
) -> None:
    answer = api.get("/admin/alerts", since=since, rule=rule, limit=limit)
    found = answer["alerts"]
    if as_json:
        emit_json(answer)
    elif quiet:
        emit_ids(a["id"] for a in found)
    else:
        rows = [
            [a["last_seen"], a["severity"], a["rule"], a["subject"], a["count"], a["summary"]]
            for a in found
        ]
        headers = ["last seen", "severity", "rule", "subject", "count", "summary"]
        table(headers, rows, ids=["last seen", "subject"])
