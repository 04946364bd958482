"""`keyledger login | logout`: keep an admin identity for one server in a profile file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from api.cli import options as o
from api.cli.identity import PROFILE, SERVER, from_profile, server_url
from api.cli.output import CliError, emit
from api.cli.profile import Profile, forget_token, load_profile, remove_profile, save_profile
from api.cli.remote import AdminApi

NEW_CLIENT_WAIT = 1.5  # seconds: a just-bootstrapped admin is known everywhere within one


def _secret(from_stdin: bool) -> str:
    if from_stdin:
        secret = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        secret = click.prompt("client secret", hide_input=True, err=True).strip()
    else:
        raise CliError("no terminal to ask for the secret: use --client-secret-stdin")
    if not secret:
        raise CliError("the client secret is empty")
    return secret


@click.command(
    short_help="Sign in as an admin client of a server.",
    help="Sign the CLI in as an admin client of a server: the credentials are checked by "
    "getting a token, then saved in $XDG_CONFIG_HOME/keyledger/profile.json (mode 0600). "
    "The secret is asked for without echo, or read from standard input.",
    epilog=o.example(
        "keyledger login --server https://auth.example.com --client-id 3f0c1e9a-...",
        'keyledger login --server http://127.0.0.1:8000 --client-id "$ADMIN_ID" '
        '--client-secret-stdin <<<"$ADMIN_SECRET"',
        "keyledger login --server https://auth.example.com --client-id ID --key-file admin.pem",
    ),
)
@click.option("--server", envvar=SERVER, required=True, metavar="URL", help="the keyledger server")
@click.option("--client-id", required=True, help="the admin client's id")
@click.option("--client-secret-stdin", is_flag=True, help="read the secret from standard input")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False),
    help="a private_key_jwt admin's private key (PEM, or a JWK with its kid); kept where it is",
)
@click.option("--profile", envvar=PROFILE, default="default", show_default=True, metavar="NAME")
def login(
    server: str, client_id: str, client_secret_stdin: bool, key_file: str | None, profile: str
) -> None:
    if key_file and client_secret_stdin:
        raise click.UsageError("--key-file and --client-secret-stdin are alternatives")
    saved = Profile(
        server=server_url(server),
        client_id=client_id,
        client_secret=None if key_file else _secret(client_secret_stdin),
        key_file=str(Path(key_file).resolve()) if key_file else None,
    )
    scopes = AdminApi(from_profile(saved, profile)).verify(within=NEW_CLIENT_WAIT)
    path = save_profile(profile, saved)
    emit(f"logged in to {saved.server} as {client_id} ({' '.join(scopes)})")
    click.echo(f"profile {profile} saved in {path}", err=True)


@click.command(
    short_help="Forget a profile and its cached token.",
    help="Forget a profile: its credentials and its cached token.",
    epilog=o.example("keyledger logout", "keyledger logout --profile staging"),
)
@click.option("--profile", envvar=PROFILE, default="default", show_default=True, metavar="NAME")
def logout(profile: str) -> None:
    saved = load_profile(profile)
    if saved is None:
        click.echo(f"no profile {profile}: nothing to forget", err=True)
        return
    forget_token(from_profile(saved, profile).cache_key)
    remove_profile(profile)
    emit(f"logged out of {saved.server} (profile {profile} removed)")
