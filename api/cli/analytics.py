"""`keyledger analytics issuance | top | clients` over the admin API; `analytics keep` local."""

from __future__ import annotations

from typing import Any

import click

from api.cli import options as o
from api.cli.output import emit_ids, emit_json, table, text
from api.cli.remote import AdminApi

REPORTS = "/admin/analytics"


@click.group(help="Token issuance, secret age, dormant clients.")
def analytics() -> None:
    pass


def _window(func: Any) -> Any:
    func = click.option("--until", metavar="RFC3339", help="default: now")(func)
    return click.option("--since", metavar="RFC3339", help="default: 24 h (30 d by day) ago")(func)


def _counts(counts: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items())


@analytics.command(
    help=f"Tokens issued and revoked per client per hour or day. {o.REMOTE}",
    epilog=o.example(
        "keyledger analytics issuance",
        "keyledger analytics issuance --granularity day --since 2026-11-01T00:00Z",
    ),
)
@click.option("--granularity", type=click.Choice(["hour", "day"]), default="hour")
@click.option("--client", metavar="CLIENT_ID", help="only this client")
@_window
@o.as_json
@o.quiet
@o.remote
def issuance(
    api: AdminApi,
    granularity: str,
    client: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    query = {"granularity": granularity, "client_id": client, "since": since, "until": until}
    report = api.get(f"{REPORTS}/issuance", **query)
    buckets = report["buckets"]
    if as_json:
        emit_json(report)
    elif quiet:
        emit_ids(dict.fromkeys(b["client_id"] for b in buckets))
    else:
        rows = [
            [
                b["bucket"],
                b["client_name"],
                b["client_id"],
                b["issued"],
                b["revoked"],
                _counts(b["scopes"]),
                _counts(b["audiences"]),
            ]
            for b in buckets
        ]
        headers = [granularity, "client", "client_id", "issued", "revoked", "scopes", "audiences"]
        table(headers, rows, ids=[granularity, "client_id"])


@analytics.command(
    help=f"The clients that got the most tokens. {o.REMOTE}",
    epilog=o.example("keyledger analytics top --limit 5", "keyledger analytics top -q"),
)
@click.option("--limit", type=int, default=10, show_default=True)
@_window
@o.as_json
@o.quiet
@o.remote
def top(
    api: AdminApi, limit: int, since: str | None, until: str | None, as_json: bool, quiet: bool
) -> None:
    report = api.get(f"{REPORTS}/top-clients", limit=limit, since=since, until=until)
    if as_json:
        emit_json(report)
    elif quiet:
        emit_ids(c["client_id"] for c in report["clients"])
    else:
        rows = [[c["client_name"], c["client_id"], c["issued"]] for c in report["clients"]]
        table(["client", "client_id", "issued"], rows, ids=["client_id"])


@analytics.command(
    "clients",
    short_help="Clients by status, secret age, dormancy.",
    help=f"Clients by status; secret age against the rotation policy; dormant ones. {o.REMOTE}",
    epilog=o.example("keyledger analytics clients", "keyledger analytics clients --dormant-days 7"),
)
@click.option("--rotation-days", type=int, help="default: the server's rotation policy")
@click.option("--dormant-days", type=int, help="default: the server's KEYLEDGER_DORMANT_DAYS")
@o.as_json
@o.quiet
@o.remote
def clients_report(
    api: AdminApi,
    rotation_days: int | None,
    dormant_days: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    query = {"rotation_days": rotation_days, "dormant_days": dormant_days}
    report = api.get(f"{REPORTS}/clients", **query)
    if as_json:
        emit_json(report)
        return
    if quiet:
        emit_ids(c["client_id"] for c in report["clients"])
        return
    rows = [
        [
            c["name"],
            c["client_id"],
            c["status"],
            f"{c['secret_age_days']:.1f}" + (" ROTATE" if c["rotation_due"] else ""),
            text(c["last_token_at"] or "never") + (" DORMANT" if c["dormant"] else ""),
            c["tokens_issued"],
        ]
        for c in report["clients"]
    ]
    by_status = ", ".join(f"{k} {v}" for k, v in report["by_status"].items())
    headers = ["client", "client_id", "status", "secret age (days)", "last token", "issued"]
    table(headers, rows, ids=["client_id"], title=f"clients: {by_status}")


@analytics.command(
    short_help="Keep the analytics table (on the installation).",
    help="Follow the log into the analytics table as its own process, until SIGTERM (when "
    f"`serve` does not: KEYLEDGER_ANALYTICS_IN_SERVE=false). {o.LOCAL}",
    epilog=o.example("KEYLEDGER_ANALYTICS_IN_SERVE=false keyledger analytics keep"),
)
def keep() -> int:
    from api.cli.services import keep_analytics

    return keep_analytics()
