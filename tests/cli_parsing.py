"""Whether a `keyledger` command line parses, without running it: for documents and
compose.yaml, whose commands must stay valid as the CLI changes."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import click

from api.cli.main import PROG, cli


def parse(args: Sequence[str]) -> click.Context:
    """The context of the command the arguments name (its `params`), or `click.UsageError`."""
    ctx = cli.make_context(PROG, list(args), resilient_parsing=False)
    command: click.Command = cli
    while isinstance(command, click.Group):
        with warnings.catch_warnings():  # click 8.2+ deprecates it; 9.0 puts all in `args`
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*ctx.protected_args, *ctx.args]
        if not rest:
            if command.invoke_without_command:
                break
            raise click.UsageError("no command given", ctx)
        name, sub, remaining = command.resolve_command(ctx, rest)
        assert name is not None
        assert sub is not None
        ctx = sub.make_context(name, remaining, parent=ctx, resilient_parsing=False)
        command = sub
    return ctx
