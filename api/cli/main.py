"""The `keyledger` command: admin commands over the admin HTTP API, and the commands that run
the installation itself (`serve`, `relay`, `detect`, `projections`, `analytics keep`,
`admin bootstrap`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click
from click.shell_completion import get_completion_class

from api.cli import client_changes  # noqa: F401 - adds the change commands to `clients`
from api.cli import options as o
from api.cli.alerts import alerts
from api.cli.analytics import analytics
from api.cli.archive import archive
from api.cli.clients import clients
from api.cli.installation import admin
from api.cli.keys import keys
from api.cli.ledger import ledger
from api.cli.login import login, logout
from api.cli.output import CliError
from api.cli.projections import projections
from api.cli.retention import retention
from api.cli.services import detect, relay, serve
from api.cli.tokens import tokens

PROG = "keyledger"
SHELLS = ("bash", "zsh", "fish")


@click.group(
    name=PROG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help="keyledger: an OAuth 2.0 client_credentials server. Admin commands (clients, tokens, "
    "keys, alerts, analytics reports) talk to a server's admin API: `keyledger login` first, "
    "or set KEYLEDGER_SERVER with KEYLEDGER_ADMIN_CLIENT_ID and KEYLEDGER_ADMIN_CLIENT_SECRET. "
    "serve, relay, detect, projections, analytics keep and admin bootstrap run on the "
    "installation itself.",
    epilog=o.example(
        "keyledger login --server http://127.0.0.1:8000 --client-id ID",
        'keyledger clients register --name billing-job --scope "invoices:read"',
        "keyledger clients list",
    ),
)
@click.version_option(package_name=PROG, prog_name=PROG, message="%(prog)s %(version)s")
def cli() -> None:
    pass


@cli.command(
    help="Print the shell completion script for bash, zsh or fish.",
    epilog=o.example(
        'eval "$(keyledger completion bash)"            # in ~/.bashrc',
        "keyledger completion fish > ~/.config/fish/completions/keyledger.fish",
    ),
)
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, PROG, "_KEYLEDGER_COMPLETE").source())


for command in (serve, relay, detect, projections, analytics, admin, ledger, archive, retention):
    cli.add_command(command)
for command in (login, logout, clients, tokens, keys, alerts):
    cli.add_command(command)


def _closed_pipe() -> int:
    """The reader went away (`| head -1`): stop quietly, as `yes | head -1` does."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (0 ok, 1 an error, 2 a usage error). Errors are one
    line on stderr, never a traceback."""
    try:
        result = cli.main(
            args=None if argv is None else list(argv), prog_name=PROG, standalone_mode=False
        )
        sys.stdout.flush()
    except BrokenPipeError:
        return _closed_pipe()
    except SystemExit:
        # click answers a closed stdout itself: it wraps the streams, then exits with 1.
        if type(sys.stdout).__name__ == "_PacifyFlushWrapper":
            return _closed_pipe()
        raise
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        if isinstance(error, BrokenPipeError):
            return _closed_pipe()
        click.echo(f"error: {' '.join(str(error).split())}", err=True)
        return 1
    except Exception as error:
        message = " ".join(str(error).split())
        click.echo(f"error: {type(error).__name__}: {message}", err=True)
        return 1
    return result if isinstance(result, int) else 0


__all__ = ["CliError", "cli", "main"]

if __name__ == "__main__":
    sys.exit(main())
