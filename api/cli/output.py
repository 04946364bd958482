"""What the CLI prints: full-width tables, records as fields, JSON, ids, and one-line errors.

Values are never cut: a terminal gets a rich table whose cells fold instead of ending in an
ellipsis, and a pipe gets plain columns as wide as the widest value. Nothing is printed as a
Python repr: `None` is `-`, lists are joined, dicts become `name=value` fields.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Column, Table

NOTHING = "-"


class CliError(click.ClickException):
    """An error reported in one line, `error: <message>`, with exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def text(value: Any) -> str:
    """A value as a person reads it: no reprs, no `None`."""
    if value is None or value == "":
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={text(v)}" for k, v in value.items()) or NOTHING
    if isinstance(value, list | tuple):
        return " ".join(text(v) for v in value) or NOTHING
    return str(value)


def emit(line: str = "") -> None:
    click.echo(line)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def emit_ids(ids: Iterable[Any]) -> None:
    """`-q`: one id a line, nothing else."""
    for value in ids:
        click.echo(str(value))


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    ids: Sequence[str] = (),
    title: str | None = None,
) -> None:
    """A table; the `ids` columns never wrap on a terminal (the others fold, never truncate)."""
    cells = [[text(value) for value in row] for row in rows]
    if not sys.stdout.isatty():
        _plain(headers, cells, title)
        return
    widest = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    columns = [Column(h, overflow="fold", no_wrap=h in ids) for h in headers]
    rendered = Table(*columns, box=box.SIMPLE_HEAD, title=title, title_justify="left")
    for row in cells:
        rendered.add_row(*row)
    # Ids never fold; the other columns fold into what is left, at least a few characters
    # each. A terminal too narrow even for that gets lines wider than itself, never a cut.
    needed = sum(w if h in ids else min(w, 8) for h, w in zip(headers, widest, strict=True))
    _print_whole(rendered, needed + 3 * len(headers))


def _print_whole(renderable: Table, needed: int) -> None:
    console = Console()
    if needed > console.width:
        console = Console(width=needed)
    console.print(renderable)


def _plain(headers: Sequence[str], cells: list[list[str]], title: str | None) -> None:
    """Aligned columns as wide as their widest value: for `| grep`, `| cut`, `| less -S`."""
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    if title:
        click.echo(title)
    for row in [list(headers), *cells]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def fields(data: dict[str, Any], special: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """A record as (field, value) rows; a nested dict becomes `name.key` rows."""
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        if special and key in special:
            rows.append((key, special[key]))
        elif isinstance(value, dict) and value:
            rows.extend((f"{key}.{k}", text(v)) for k, v in value.items())
        else:
            rows.append((key, text(value)))
    return rows


def record(data: dict[str, Any], special: dict[str, str] | None = None) -> None:
    """One record, a field a line."""
    rows = fields(data, special)
    if not sys.stdout.isatty():
        width = max((len(k) for k, _ in rows), default=0)
        for key, value in rows:
            click.echo(f"{key.ljust(width)}  {value}")
        return
    rendered = Table(
        Column("field", style="bold", no_wrap=True),
        Column("value", overflow="fold"),
        box=None,
        show_header=False,
    )
    for key, value in rows:
        rendered.add_row(key, value)
    keys_width = max((len(k) for k, _ in rows), default=0)
    values_width = max((len(v) for _, v in rows), default=0)
    _print_whole(rendered, keys_width + 1 + min(values_width, 44))


def confirm(question: str, *, yes: bool) -> None:
    """Ask before an irreversible command; without a terminal, `--yes` is the only answer."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question}: refused without confirmation (no terminal): add --yes")
    if not click.confirm(f"{question}?", default=False, err=True):
        raise CliError("not confirmed: nothing was changed")
