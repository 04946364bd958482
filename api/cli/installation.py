"""`keyledger admin bootstrap`: the first admin client, made by the installation itself.

The one client command that stays local: before an admin client exists, nobody can call the
admin API. It may set up a new installation, as `serve` does.
"""

from __future__ import annotations

import getpass
import json

import click

from api.cli import options as o
from api.cli.output import CliError, emit
from api.cli.services import local, settings_here


@click.group(help="Administration of keyledger itself.")
def admin() -> None:
    pass


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


@admin.command(
    short_help="Create the first admin client (on the installation).",
    help="Create the first admin client (scope keyledger:admin) and print its secret once; "
    f"sets up a new installation when there is none. {o.LOCAL}",
    epilog=o.example(
        'eval "$(keyledger admin bootstrap --export)"   # sets ADMIN_ID and ADMIN_SECRET',
        'keyledger login --server http://127.0.0.1:8000 --client-id "$ADMIN_ID" '
        '--client-secret-stdin <<<"$ADMIN_SECRET"',
    ),
)
@click.option("--name", default="keyledger-admin", show_default=True)
@click.option("--force", is_flag=True, help="add one even if an admin client exists")
@o.reason
@o.as_json
@click.option("--export", is_flag=True, help="print export ADMIN_ID=... ADMIN_SECRET=...")
@local
def bootstrap(name: str, force: bool, reason: str | None, as_json: bool, export: bool) -> None:
    from adapters.client_secrets import SecretHasher
    from adapters.clock import SystemClock
    from api.bootstrap import installation_secrets, open_ledger, prepare
    from api.usecases.client_admin import ADMIN_SCOPE, ClientAdmin, current_clients
    from domain.admin_scopes import Admin
    from domain.client_settings import ClientSettings

    if as_json and export:
        raise click.UsageError("--json and --export are alternatives")
    settings = settings_here()
    prepare(settings, create=True)
    ledger = open_ledger(settings)
    try:
        clients = ClientAdmin(
            ledger, SecretHasher(installation_secrets(settings, ledger).pepper), SystemClock()
        )
        existing = clients.admin_clients(current_clients(ledger))
        if existing and not force:
            ids = ", ".join(r.client_id for r in existing)
            raise CliError(f"an admin client already exists ({ids}); use --force to add another")
        created = clients.register(
            ClientSettings.create(name=name, allowed_scopes=[ADMIN_SCOPE]),
            by=Admin.installation(actor()),
            reason=reason or "bootstrap",
        )
    finally:
        ledger.close()
    client_id, secret = created.client_id, created.client_secret
    if as_json:
        emit(json.dumps({"client_id": client_id, "client_secret": secret, "secret_generation": 1}))
    elif export:
        emit(f"export ADMIN_ID={client_id} ADMIN_SECRET={secret}")
    else:
        emit(f"client_id:     {client_id}")
        emit(f"client_secret: {secret}")
        click.echo(
            "The secret is shown only this once. Sign the CLI in with it: keyledger login "
            f"--server URL --client-id {client_id}",
            err=True,
        )
