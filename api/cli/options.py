"""Options shared by many commands, and the two kinds of command: remote and local."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from api.cli.identity import PROFILE, SERVER
from api.cli.remote import AdminApi

T = TypeVar("T")

REMOTE = "Runs against a keyledger server over its admin API (--server, or keyledger login)."
LOCAL = "Runs on the installation: needs its database and secrets."


def example(*lines: str) -> str:
    """A command's epilog: examples, kept as written (`\\b` stops click rewrapping them)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def remote(command: Callable[..., T]) -> Callable[..., T]:
    """A command of the admin API: it receives `api`, built from --server and --profile."""

    @functools.wraps(command)
    def run(*args: Any, server: str | None, profile: str, **kwargs: Any) -> T:
        return command(*args, api=AdminApi.connect(server, profile), **kwargs)

    run = click.option(
        "--profile",
        envvar=PROFILE,
        default="default",
        show_default=True,
        metavar="NAME",
        help=f"the profile `keyledger login` saved (env {PROFILE})",
    )(run)
    return click.option(
        "--server",
        envvar=SERVER,
        metavar="URL",
        help=f"the keyledger server (env {SERVER}; default: the profile's)",
    )(run)


as_json = click.option(
    "--json", "as_json", is_flag=True, help="print the admin API's JSON answer as it is"
)
quiet = click.option("-q", "--quiet", is_flag=True, help="print ids only, one a line")
yes = click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
reason = click.option("--reason", help="why (recorded with the change)")
if_version = click.option(
    "--if-version",
    type=int,
    metavar="N",
    help='only if the client is still at version N (sends If-Match: "N"; else 412)',
)
