"""Every command that reads or writes archives names them with `--archives` (a directory or an
s3:// URL), and still takes the option's earlier name, `--archive-dir`."""

from __future__ import annotations

import pytest

from tests.cli_parsing import parse

COMMANDS = [
    ["ledger", "verify"],
    ["ledger", "export"],
    ["projections", "rebuild", "analytics"],
    ["retention", "run"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("where", ["/mnt/archives", "s3://audit-archives/keyledger"])
def test_archives_are_named_with_archives(command: list[str], where: str) -> None:
    assert parse([*command, "--archives", where]).params["archives"] == where


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_the_earlier_name_archive_dir_still_names_them(command: list[str]) -> None:
    assert parse([*command, "--archive-dir", "/mnt/archives"]).params["archives"] == "/mnt/archives"
