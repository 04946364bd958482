"""Where an archive is, from the name of either of its files (as `archive verify` and `archive
load` take it, and as a removal records it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.token_archives import (
    ArchiveDirectory,
    NotAnArchiveFile,
    archive_file,
    archives_holding,
)
from domain.token_periods import NotAPeriod, TokenPeriod


@pytest.mark.parametrize("name", ["tokens-2026-11.manifest.json", "tokens-2026-11.jsonl.gz"])
def test_either_file_of_an_archive_names_its_directory_and_month(name: str) -> None:
    archives, period = archive_file(f"/var/archives/{name}")

    assert isinstance(archives, ArchiveDirectory)
    assert (archives.path, period) == (Path("/var/archives"), TokenPeriod(2026, 11))


def test_a_recorded_location_names_the_directory_holding_it() -> None:
    archives = archives_holding("/var/archives/tokens-2026-11.jsonl.gz")

    assert isinstance(archives, ArchiveDirectory)
    assert archives.path == Path("/var/archives")


def test_a_name_that_is_neither_file_of_an_archive_is_refused() -> None:
    with pytest.raises(NotAnArchiveFile, match=r"history\.jsonl is not an archive file"):
        archive_file("/var/archives/history.jsonl")


def test_an_archive_of_no_month_is_refused() -> None:
    with pytest.raises(NotAPeriod):
        archive_file("/var/archives/tokens-2026-13.jsonl.gz")
