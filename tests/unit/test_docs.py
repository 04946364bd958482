"""The guide, the README and the examples' READMEs stay true to the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

import api.http.oauth2.introspection  # noqa: F401 - defines an OAuthError subclass of its own
from domain.oauth_errors import OAuthError
from tests.cli_parsing import parse

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guide.md"
DOCUMENTS = [ROOT / "README.md", GUIDE, *sorted((ROOT / "examples").glob("**/README.md"))]


def oauth_error_codes() -> set[str]:
    found: set[str] = set()
    pending: list[type[OAuthError]] = [OAuthError]
    while pending:
        cls = pending.pop()
        found.add(cls.error)
        pending.extend(cls.__subclasses__())
    return found


def codes_in_api_source() -> set[str]:
    """Codes written as literals where the HTTP layer renders errors."""
    patterns = [
        r'"error":\s*"(\w+)"',
        r'(?:BearerError|_admin_error)\(\d+,\s*"(\w+)"',
        r'\b\d{3}:\s*"(\w+)"',
        r'exc\.error or "(\w+)"',
    ]
    source = "\n".join(p.read_text() for p in (ROOT / "api").rglob("*.py"))
    return {code for pattern in patterns for code in re.findall(pattern, source)}


def troubleshooting_codes() -> set[str]:
    section = GUIDE.read_text().split("## Troubleshooting", 1)[1]
    return set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))


def test_the_troubleshooting_table_covers_every_error_code_the_server_sends() -> None:
    sent = oauth_error_codes() | codes_in_api_source()
    assert sent >= {"invalid_client", "not_found", "conflict", "insufficient_scope"}
    assert sent - troubleshooting_codes() == set()


def test_the_troubleshooting_table_names_no_code_the_server_never_sends() -> None:
    assert troubleshooting_codes() - (oauth_error_codes() | codes_in_api_source()) == set()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file(document: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    missing = [link for link in local if not (document.parent / link).exists()]
    assert missing == []


def keyledger_commands(document: Path) -> list[str]:
    """Every `keyledger ...` command in the document's sh blocks (usage lines with [...] or
    ... excepted)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", document.read_text(), re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#.*$", "", line)
            for match in re.finditer(r"(?:^|[\s(])(?:\.venv/bin/)?keyledger\s+([^)\n;&|]*)", line):
                text = re.split(r"\s(?:<<<|<|>|2>)", match.group(1))[0].strip()  # redirections
                if "[" not in text and "..." not in text and "…" not in text:
                    commands.append(text)
    return commands


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_keyledger_command_shown_parses(document: Path) -> None:
    refused = []
    for command in keyledger_commands(document):
        try:
            parse(shlex.split(command))
        except click.ClickException:
            refused.append(command)
    assert refused == []


def test_the_examples_readmes_show_keyledger_commands() -> None:
    for readme in (ROOT / "examples").glob("*/README.md"):
        assert any(c.startswith("clients register") for c in keyledger_commands(readme)), readme


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    from dataclasses import fields

    from api.settings import Settings

    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`KEYLEDGER_(\w+)`", table))
    missing = [
        f.name
        for f in fields(Settings)
        if f.name.upper() not in documented and not f.name.startswith("detect_")
    ]
    assert missing == []
