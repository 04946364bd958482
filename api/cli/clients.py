"""The `keyledger clients|tokens|admin` commands: each one line of intent over `ClientAdmin`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.client_secrets import SecretHasher
from adapters.clock import SystemClock
from adapters.signing import JwtVerifier
from api.bootstrap import installation_secrets, key_keeper, open_ledger, prepare
from api.settings import Settings
from api.usecases.client_admin import (
    ADMIN_SCOPE,
    ClientAdmin,
    NewCredentials,
    canonical_client_id,
    current_clients,
    parse_duration,
)
from api.usecases.projection_rebuild import copy_records
from api.usecases.revocation import TokenRevoker
from api.usecases.timestamps import parse_rfc3339
from domain.client import PRIVATE_KEY_JWT
from domain.client_settings import ClientSettings
from projections.tokens import RevokedTokensFollower, RevokedTokensView, revoked_tokens_table


class CliError(Exception):
    """An error the CLI reports in one line with exit status 2."""


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


def scopes(value: str | None) -> list[str] | None:
    return None if value is None else [s for s in value.split(" ") if s]


@contextmanager
def admin() -> Iterator[ClientAdmin]:
    """The client use cases on an existing installation, with its own pepper (checked)."""
    settings = Settings.from_env()
    ledger = open_ledger(settings)
    try:
        hasher = SecretHasher(installation_secrets(settings, ledger).pepper)
        yield ClientAdmin(ledger, hasher, SystemClock())
    finally:
        ledger.close()


def print_credentials(args: argparse.Namespace, created: NewCredentials) -> None:
    if args.json:
        print(
            json.dumps(
                {
                    "client_id": created.client_id,
                    "client_secret": created.client_secret,
                    "secret_generation": created.generation,
                }
            )
        )
    elif getattr(args, "export", False):
        prefix = getattr(args, "export_prefix", "CLIENT")
        print(f"export {prefix}_ID={created.client_id} {prefix}_SECRET={created.client_secret}")
    else:
        print(f"client_id:     {created.client_id}")
        print(f"client_secret: {created.client_secret}")
        print("The secret is shown only this once: store it now.", file=sys.stderr)


def print_record(args: argparse.Namespace, data: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
        return
    table = Table("field", "value", show_header=False)
    for key, value in data.items():
        if key == "secrets":
            text = ", ".join(
                f"#{s['generation']} (expires {s['expires_at'] or 'never'})" for s in value
            )
        elif isinstance(value, list):
            text = " ".join(map(str, value))
        else:
            text = str(value)
        table.add_row(key, text)
    Console().print(table)


def read_jwks(path: str) -> Any:
    """A JWK Set from a JSON file (`-`: standard input)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        return json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the JWK Set {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None


def cmd_register(args: argparse.Namespace) -> int:
    settings = ClientSettings.create(
        name=args.name,
        allowed_scopes=scopes(args.scope) or [],
        default_scopes=scopes(args.default_scope),
        token_ttl=args.token_ttl,
        audiences=args.audience or [],
        default_audience=args.default_audience,
    )
    if (args.auth_method == PRIVATE_KEY_JWT) != (args.jwks_file is not None):
        raise CliError("--jwks-file goes with --auth-method private_key_jwt, and only with it")
    with admin() as a:
        if args.jwks_file is None:
            print_credentials(args, a.register(settings, actor=actor(), reason=args.reason))
            return 0
        jwks = read_jwks(args.jwks_file)
        client_id = a.register_with_keys(settings, jwks, actor=actor(), reason=args.reason)
    if args.json:
        print(json.dumps({"client_id": client_id, "token_endpoint_auth_method": PRIVATE_KEY_JWT}))
    elif args.export:
        print(f"export {getattr(args, 'export_prefix', 'CLIENT')}_ID={client_id}")
    else:
        print(f"client_id:     {client_id}")
        print("It authenticates with private_key_jwt: no secret.", file=sys.stderr)
    return 0


def cmd_replace_keys(args: argparse.Namespace) -> int:
    jwks = read_jwks(args.jwks_file)
    with admin() as a:
        changed = a.replace_keys(args.client_id, jwks, actor=actor(), reason=args.reason)
        record = current_clients(a.ledger).get(changed.client_id)
    assert record is not None
    print_record(args, record.public_view())
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with admin() as a:
        if args.as_of_copy:
            copied = copy_records(a.ledger, args.as_of_copy, "clients")
            ordered = sorted(copied, key=lambda r: (r.registered_at, r.client_id))
            records = [r.public_view() for r in ordered]
        else:
            records = [r.public_view() for r in current_clients(a.ledger).all()]
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


def cmd_show(args: argparse.Namespace) -> int:
    with admin() as a:
        found = (
            a.state_at(args.client_id, parse_rfc3339(args.at))
            if args.at
            else current_clients(a.ledger).get(canonical_client_id(args.client_id))
        )
    if found is None:
        raise CliError(f"no client with id {args.client_id}")
    print_record(args, found.public_view())
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with admin() as a:
        entries = a.history(args.client_id)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    table = Table("time", "actor", "event", "what changed", "reason")
    for e in entries:
        changes = ", ".join(f"{k}={v}" for k, v in e["changes"].items())
        table.add_row(e["at"], e["actor"], e["event"], changes, e["reason"] or "")
    Console().print(table)
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    with admin() as a:
        created = a.rotate_secret(
            args.client_id, grace=parse_duration(args.grace), actor=actor(), reason=args.reason
        )
    print_credentials(args, created)
    return 0


def _change(args: argparse.Namespace, method: str, **kwargs: Any) -> int:
    """Run one client command and print the client's new state."""
    with admin() as a:
        client = a.change(
            args.client_id,
            lambda c, now: getattr(c, method)(now=now, actor=actor(), reason=args.reason, **kwargs),
        )
        record = current_clients(a.ledger).get(client.client_id)
    assert record is not None
    print_record(args, record.public_view())
    return 0


def cmd_revoke_previous(args: argparse.Namespace) -> int:
    return _change(args, "revoke_previous_secret")


def cmd_suspend(args: argparse.Namespace) -> int:
    return _change(args, "suspend")


def cmd_reactivate(args: argparse.Namespace) -> int:
    return _change(args, "reactivate")


def cmd_set_scopes(args: argparse.Namespace) -> int:
    return _change(
        args,
        "change_scopes",
        allowed_scopes=scopes(args.scope) or [],
        default_scopes=scopes(args.default_scope),
    )


def cmd_set_token_ttl(args: argparse.Namespace) -> int:
    return _change(args, "change_token_lifetime", token_ttl=args.seconds)


def cmd_set_quota(args: argparse.Namespace) -> int:
    return _change(
        args, "change_quotas", tokens_per_minute=args.per_minute, tokens_per_day=args.per_day
    )


def cmd_set_audiences(args: argparse.Namespace) -> int:
    return _change(
        args, "change_audiences", audiences=args.audiences, default_audience=args.default
    )


def cmd_delete(args: argparse.Namespace) -> int:
    return _change(args, "delete")


@contextmanager
def revoker() -> Iterator[TokenRevoker]:
    """The revocation use case on the database, outside any server."""
    settings = Settings.from_env()
    ledger = open_ledger(settings)
    try:
        keys = key_keeper(settings, ledger, SystemClock()).ring
        view = current_clients(ledger)
        follower = RevokedTokensFollower(
            ledger, revoked_tokens_table(ledger.datastore), RevokedTokensView()
        )
        verifier = JwtVerifier(keys, settings.issuer_url)
        yield TokenRevoker(ledger, verifier, view, SystemClock(), follower)
    finally:
        ledger.close()


def cmd_show_token(args: argparse.Namespace) -> int:
    with revoker() as r:
        print_record(args, r.history(args.jti))
    return 0


def cmd_revoke_tokens(args: argparse.Namespace) -> int:
    if args.jti:
        if args.client or args.before or args.secret_generation:
            raise CliError("give a JTI, or --client with --before/--secret-generation, not both")
        with revoker() as r:
            revoked = r.revoke_jti(args.jti, actor=actor(), reason=args.reason)
            state = {**r.history(args.jti), "revoked_now": revoked}
        print_record(args, state)
        return 0
    if not args.client:
        raise CliError("give a token's JTI, or --client CLIENT_ID")
    with admin() as a:
        before = parse_rfc3339(args.before) if args.before else None
        client = a.change(
            args.client,
            lambda c, now: c.revoke_tokens(
                cutoff=before,
                secret_generation=args.secret_generation,
                now=now,
                actor=actor(),
                reason=args.reason,
            ),
        )
        entry = a.history(client.client_id)[-1]
    if args.json:
        print(json.dumps(entry))
    else:
        print(f"revoked tokens of {client.client_id}: {entry['changes']}")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    prepare(Settings.from_env(), create=True)  # the one client command that may set one up
    with admin() as a:
        existing = a.admin_clients(current_clients(a.ledger))
        if existing and not args.force:
            ids = ", ".join(r.client_id for r in existing)
            raise CliError(f"an admin client already exists ({ids}); use --force to add another")
        settings = ClientSettings.create(name=args.name, allowed_scopes=[ADMIN_SCOPE])
        print_credentials(
            args, a.register(settings, actor=actor(), reason=args.reason or "bootstrap")
        )
    return 0
