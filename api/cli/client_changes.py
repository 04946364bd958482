"""`keyledger clients <change>`: the commands that change one client, each one admin API call.

Each prints the client as the server answers after the change; `--if-version N` makes the
change conditional on the client's version (`If-Match`, RFC 9110 §13.1.1).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import click

from api.cli import options as o
from api.cli.clients import PATH, clients, read_jwks, scopes, show_client, show_credentials
from api.cli.output import confirm
from api.cli.remote import AdminApi

ID = "3f0c1e9a-5b8d-4c2e-9a51-0d6f1b2c3d4e"  # the client id the examples show


def change(
    api: AdminApi,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    if_version: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    show_client(api.call(method, path, body=body, if_version=if_version), as_json, quiet)


def changing(func: Callable[..., None]) -> Callable[..., None]:
    """The options of every change: a reason, If-Match, and the output."""
    for option in (o.remote, o.quiet, o.as_json, o.if_version, o.reason):
        func = option(func)
    return func


def _limit(value: str | None) -> int | str | None:
    if value is None:
        return "keep"
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"a number of tokens, or none: {value!r}") from None


def _update(api: AdminApi, client_id: str, fields: dict[str, Any], **out: Any) -> None:
    change(api, "PATCH", f"{PATH}/{client_id}", fields, **out)


@clients.command(
    short_help="Change name, scopes, lifetime, audiences, quotas.",
    help="Change a client's name, scopes, token lifetime, audiences or quotas, atomically.",
    epilog=o.example(
        f'keyledger clients update {ID} --scope "orders:read" --token-ttl 900 --reason narrow',
        f"keyledger clients update {ID} --per-minute 30 --if-version 3",
        f"keyledger clients update {ID} --no-audiences",
    ),
)
@click.argument("client_id")
@click.option("--name")
@click.option("--scope", help='the allowed scopes, space-separated: "a b"')
@click.option("--default-scope", help="default: the old defaults that stay allowed")
@click.option("--token-ttl", type=int, metavar="SECONDS", help="60 to 86400")
@click.option("--audience", multiple=True, metavar="URL", help="the allowed audiences (repeatable)")
@click.option("--no-audiences", is_flag=True, help="allow no audience at all")
@click.option("--default-audience", metavar="URL")
@click.option("--per-minute", metavar="N|none", help="tokens per minute (none: no limit)")
@click.option("--per-day", metavar="N|none", help="tokens per day (none: no limit)")
@changing
def update(
    api: AdminApi,
    client_id: str,
    name: str | None,
    scope: str | None,
    default_scope: str | None,
    token_ttl: int | None,
    audience: tuple[str, ...],
    no_audiences: bool,
    default_audience: str | None,
    per_minute: str | None,
    per_day: str | None,
    reason: str | None,
    **out: Any,
) -> None:
    if audience and no_audiences:
        raise click.UsageError("--audience and --no-audiences are alternatives")
    fields: dict[str, Any] = {
        "name": name,
        "allowed_scopes": scopes(scope),
        "default_scopes": scopes(default_scope),
        "token_ttl": token_ttl,
        "audiences": [] if no_audiences else (list(audience) or None),
        "default_audience": default_audience,
        "reason": reason,
    }
    minute, day = _limit(per_minute), _limit(per_day)
    if (minute, day) != ("keep", "keep"):
        kept = api.get(f"{PATH}/{client_id}")["quotas"] if "keep" in (minute, day) else {}
        fields["quotas"] = {
            "tokens_per_minute": kept.get("tokens_per_minute") if minute == "keep" else minute,
            "tokens_per_day": kept.get("tokens_per_day") if day == "keep" else day,
        }
    if all(v is None for k, v in fields.items() if k != "reason"):
        raise click.UsageError("name at least one thing to change (see --help)")
    _update(api, client_id, fields, **out)


@clients.command(
    "set-scopes",
    short_help="Replace the allowed (and default) scopes.",
    help="Replace the allowed (and default) scopes: `update --scope` in short.",
    epilog=o.example(f'keyledger clients set-scopes {ID} --scope "a c" --default-scope a'),
)
@click.argument("client_id")
@click.option("--scope", required=True, help='space-separated: "a b"')
@click.option("--default-scope", help="default: the old defaults that stay allowed")
@changing
def set_scopes(
    api: AdminApi,
    client_id: str,
    scope: str,
    default_scope: str | None,
    reason: str | None,
    **out: Any,
) -> None:
    fields = {"allowed_scopes": scopes(scope), "default_scopes": scopes(default_scope)}
    _update(api, client_id, {**fields, "reason": reason}, **out)


@clients.command(
    "set-token-ttl",
    short_help="Set the token lifetime in seconds.",
    help="Set the token lifetime, 60 to 86400 seconds: `update --token-ttl` in short.",
    epilog=o.example(f"keyledger clients set-token-ttl {ID} 600"),
)
@click.argument("client_id")
@click.argument("seconds", type=int)
@changing
def set_token_ttl(
    api: AdminApi, client_id: str, seconds: int, reason: str | None, **out: Any
) -> None:
    _update(api, client_id, {"token_ttl": seconds, "reason": reason}, **out)


@clients.command(
    "set-audiences",
    help="Replace the allowed audiences (none given: no audience).",
    epilog=o.example(
        f"keyledger clients set-audiences {ID} https://stock.internal --default https://stock.internal"
    ),
)
@click.argument("client_id")
@click.argument("audiences", nargs=-1, metavar="[URL]...")
@click.option("--default", "default", metavar="URL", help="the aud when a request names none")
@changing
def set_audiences(
    api: AdminApi,
    client_id: str,
    audiences: tuple[str, ...],
    default: str | None,
    reason: str | None,
    **out: Any,
) -> None:
    fields = {"audiences": list(audiences), "default_audience": default, "reason": reason}
    _update(api, client_id, fields, **out)


@clients.command(
    "set-quota",
    help="Set both issuance quotas (an omitted one: no limit).",
    epilog=o.example(f"keyledger clients set-quota {ID} --per-minute 30 --per-day 5000"),
)
@click.argument("client_id")
@click.option("--per-minute", type=int, metavar="N")
@click.option("--per-day", type=int, metavar="N")
@changing
def set_quota(
    api: AdminApi,
    client_id: str,
    per_minute: int | None,
    per_day: int | None,
    reason: str | None,
    **out: Any,
) -> None:
    quotas = {"tokens_per_minute": per_minute, "tokens_per_day": per_day}
    _update(api, client_id, {"quotas": quotas, "reason": reason}, **out)


@clients.command(
    "rotate-secret",
    short_help="A new secret; the previous one works for --grace.",
    help="A new secret, printed once; the previous one keeps working for --grace.",
    epilog=o.example(
        f"keyledger clients rotate-secret {ID} --grace 24h --reason quarterly",
        f'eval "$(keyledger clients rotate-secret {ID} --grace 0s --export)"',
    ),
)
@click.argument("client_id")
@click.option("--grace", default="24h", show_default=True, help="0s to 30d (30s, 15m, 24h, 7d)")
@o.reason
@o.if_version
@o.as_json
@click.option(
    "--export", is_flag=True, help="print a shell line: export CLIENT_ID=… CLIENT_SECRET=…"
)
@o.remote
def rotate_secret(
    api: AdminApi,
    client_id: str,
    grace: str,
    reason: str | None,
    if_version: int | None,
    as_json: bool,
    export: bool,
) -> None:
    body = {"grace": grace, "reason": reason}
    path = f"{PATH}/{client_id}/secret/rotate"
    show_credentials(api.call("POST", path, body=body, if_version=if_version), as_json, export)


@clients.command(
    "revoke-previous",
    short_help="End the previous secret's grace now (asks first).",
    help="End the previous secret's grace period now (irreversible: asks first).",
    epilog=o.example(f"keyledger clients revoke-previous {ID} --reason leaked --yes"),
)
@click.argument("client_id")
@o.yes
@changing
def revoke_previous(
    api: AdminApi, client_id: str, yes: bool, reason: str | None, **out: Any
) -> None:
    confirm(f"end the previous secret of client {client_id} now", yes=yes)
    change(api, "POST", f"{PATH}/{client_id}/secret/revoke-previous", {"reason": reason}, **out)


old_name = copy.copy(revoke_previous)  # the name before the admin API came: still works
old_name.hidden = True
clients.add_command(old_name, "revoke-previous-secret")


@clients.command(
    short_help="Refuse the client everywhere within a second.",
    help="Refuse the client everywhere within a second, and void its tokens.",
    epilog=o.example(f'keyledger clients suspend {ID} --reason "leaked secret"'),
)
@click.argument("client_id")
@click.option("--reason", required=True, help="why (required; recorded with the change)")
@o.if_version
@o.as_json
@o.quiet
@o.remote
def suspend(api: AdminApi, client_id: str, reason: str, **out: Any) -> None:
    change(api, "POST", f"{PATH}/{client_id}/suspend", {"reason": reason}, **out)


@clients.command(
    short_help="Let a suspended client authenticate again.",
    help="Let a suspended client authenticate again (its earlier tokens stay void).",
    epilog=o.example(f"keyledger clients reactivate {ID} --reason resolved"),
)
@click.argument("client_id")
@changing
def reactivate(api: AdminApi, client_id: str, reason: str | None, **out: Any) -> None:
    change(api, "POST", f"{PATH}/{client_id}/reactivate", {"reason": reason}, **out)


@clients.command(
    short_help="Decommission a client for good (asks first).",
    help="Decommission a client: it never authenticates again; its history stays (asks first).",
    epilog=o.example(f"keyledger clients delete {ID} --reason decommissioned --yes"),
)
@click.argument("client_id")
@o.yes
@changing
def delete(api: AdminApi, client_id: str, yes: bool, reason: str | None, **out: Any) -> None:
    confirm(f"delete client {client_id} for good", yes=yes)
    path = f"{PATH}/{client_id}"
    show_client(
        api.call("DELETE", path, params={"reason": reason}, if_version=out["if_version"]),
        out["as_json"],
        out["quiet"],
    )


@clients.command(
    "replace-keys",
    help="Replace a private_key_jwt client's public keys.",
    epilog=o.example(
        f"keyledger clients replace-keys {ID} --jwks-file new-jwks.json --reason yearly"
    ),
)
@click.argument("client_id")
@click.option("--jwks-file", required=True, metavar="FILE", help="a JWK Set (- : stdin)")
@changing
def replace_keys(
    api: AdminApi, client_id: str, jwks_file: str, reason: str | None, **out: Any
) -> None:
    body = {"jwks": read_jwks(jwks_file), "reason": reason}
    change(api, "PUT", f"{PATH}/{client_id}/jwks", body, **out)


@clients.command(
    "revoke-tokens",
    short_help="Void the client's tokens (asks first).",
    help="Void the client's tokens issued before a time (default now), or those of one "
    "secret generation (irreversible: asks first).",
    epilog=o.example(
        f"keyledger clients revoke-tokens {ID} --yes",
        f"keyledger clients revoke-tokens {ID} --secret-generation 1 --reason leaked --yes",
    ),
)
@click.argument("client_id")
@click.option("--before", metavar="RFC3339", help="default: now")
@click.option("--secret-generation", type=int, metavar="N", help="only tokens minted with it")
@o.yes
@changing
def revoke_tokens(
    api: AdminApi,
    client_id: str,
    before: str | None,
    secret_generation: int | None,
    yes: bool,
    reason: str | None,
    **out: Any,
) -> None:
    confirm(f"void tokens of client {client_id}", yes=yes)
    body = {"before": before, "secret_generation": secret_generation, "reason": reason}
    change(api, "POST", f"{PATH}/{client_id}/tokens/revoke", body, **out)
