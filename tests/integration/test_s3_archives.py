"""Issue 17, archives in an S3-compatible store: retention writes a month's archive to a
bucket (a real S3 API server on loopback: moto's), records its s3:// location, and every
reader finds it there: `archive verify` and `archive load` by URL, a rebuild of the analytics,
`ledger verify`. A damaged object is named; an upload that stopped before its manifest is no
archive; a store that refuses the upload removes nothing."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import httpx
import pytest
from click.testing import CliRunner

from adapters.event_store import Ledger
from adapters.ledger_sources import stored_rows
from adapters.s3_archives import S3Archives
from adapters.token_archives import ArchiveError, open_archives
from api.bootstrap import archived_events, ledger_tables
from api.cli.main import cli
from api.settings import Settings, SettingsError
from api.usecases.analytics import analytics_table
from api.usecases.projection_rebuild import rebuild
from api.usecases.token_retention import Removal
from domain.token_periods import TokenPeriod
from domain.token_retention import TOKEN_RETENTION_ID
from tests.e2e.server import free_port
from tests.integration.token_history import NOW, OLD, fill, retention_at

AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the session."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket, and the AWS SDK's environment pointing at the server."""
    for name, value in {**AWS, "AWS_ENDPOINT_URL_S3": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    name = f"archives-{secrets.token_hex(4)}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def objects(bucket: str) -> dict[str, bytes]:
    client = boto3.client("s3")
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


class Archived(NamedTuple):
    url: str  # the prefix the months were archived to, then removed
    removed: tuple[Removal, ...]
    analytics: list[Any]  # the analytics rows before the removal


@pytest.fixture
def archived(ledger: Ledger, settings: Settings, bucket: str) -> Archived:
    """Two months of a filled store archived to a bucket by retention, and removed."""
    fill(ledger)
    analytics = analytics_table(ledger).load()[0]
    url = f"s3://{bucket}/keyledger/prod"
    removed = retention_at(ledger, settings, url).run("test").removed
    return Archived(url, removed, analytics)


def test_retention_archives_each_month_under_the_buckets_prefix(
    archived: Archived, bucket: str
) -> None:
    assert sorted(objects(bucket)) == sorted(
        f"keyledger/prod/tokens-{p.name}.{kind}"
        for p in OLD
        for kind in ("jsonl.gz", "manifest.json")
    )


def test_a_removal_records_its_archives_url(ledger: Ledger, archived: Archived) -> None:
    expected = [f"{archived.url}/tokens-{p.name}.jsonl.gz" for p in OLD]
    record: Any = ledger.repository.get(TOKEN_RETENTION_ID)

    assert [r.archive for r in archived.removed] == expected
    assert [record.removed[p.name].archive for p in OLD] == expected


def test_archive_verify_finds_an_archive_by_its_url(archived: Archived) -> None:
    manifest = f"{archived.url}/tokens-2024-01.manifest.json"

    checked = CliRunner().invoke(cli, ["archive", "verify", manifest])

    assert checked.exit_code == 0, checked.output
    assert "verified: 7 events of 6 tokens, 2024-01" in checked.stdout


def test_a_rebuild_reads_the_removed_months_back_from_the_bucket(
    ledger: Ledger, archived: Archived
) -> None:
    rebuild(ledger, "analytics", lambda reached, head: None, archived_events(ledger))

    assert sorted(analytics_table(ledger).load()[0], key=str) == sorted(archived.analytics, key=str)


def test_ledger_verify_reads_the_removed_months_back_from_the_bucket(
    ledger: Ledger, settings: Settings, archived: Archived
) -> None:
    kept = len(list(stored_rows(ledger_tables(ledger))))

    read = CliRunner().invoke(  # no checkpoint here: what counts is that every event is read
        cli, ["ledger", "verify", "--database-url", settings.database_url, "--json"]
    )

    assert json.loads(read.stdout)["events"] == kept + 14


def test_an_archive_loads_back_from_the_bucket(
    ledger: Ledger,
    settings: Settings,
    bucket: str,
) -> None:
    fill(ledger)
    before = list(stored_rows(ledger_tables(ledger)))
    url = f"s3://{bucket}"
    retention_at(ledger, settings, url).run("test")

    for period in OLD:
        loaded = CliRunner().invoke(
            cli,
            [
                "archive",
                "load",
                f"{url}/tokens-{period.name}.jsonl.gz",
                "--database-url",
                settings.database_url,
            ],
        )
        assert loaded.exit_code == 0, loaded.output

    after = list(stored_rows(ledger_tables(ledger)))
    assert [r for r in after if r in before] == before


def test_a_damaged_object_is_named_by_verify(bucket: str, tmp_path: Path) -> None:
    period = TokenPeriod(2024, 1)
    archives = open_archives(f"s3://{bucket}/a")
    archives.write(period, [(n, _id(period, n), 1, "t", b"s") for n in range(1, 4)], NOW)
    client = boto3.client("s3")
    client.put_object(Bucket=bucket, Key="a/tokens-2024-01.jsonl.gz", Body=b"not gzip")

    checked = CliRunner().invoke(
        cli, ["archive", "verify", f"s3://{bucket}/a/tokens-2024-01.jsonl.gz"]
    )

    assert checked.exit_code == 1
    assert "tokens-2024-01.jsonl.gz: SHA-256" in checked.stdout
    assert "NOT VERIFIED" in checked.stdout


def test_an_upload_stopped_before_its_manifest_is_no_archive(bucket: str) -> None:
    period = TokenPeriod(2024, 1)
    archives = open_archives(f"s3://{bucket}")
    archives.write(period, [(1, _id(period, 1), 1, "t", b"s")], NOW)
    boto3.client("s3").delete_object(Bucket=bucket, Key="tokens-2024-01.manifest.json")

    assert archives.manifest(period) is None
    _, problems = archives.verify(period)
    assert problems == ["tokens-2024-01.manifest.json is missing: no complete archive of 2024-01"]


def test_an_archive_is_not_written_over_unless_asked(bucket: str) -> None:
    period = TokenPeriod(2024, 1)
    archives = open_archives(f"s3://{bucket}")
    archives.write(period, [(1, _id(period, 1), 1, "t", b"s")], NOW)

    with pytest.raises(ArchiveError, match="exists"):
        archives.write(period, [(2, _id(period, 2), 1, "t", b"s")], NOW)
    replaced = archives.write(period, [(2, _id(period, 2), 1, "t", b"s")], NOW, replace=True)
    assert replaced.first_position == 2


def test_a_bucket_that_refuses_the_upload_removes_nothing(
    ledger: Ledger,
    settings: Settings,
    bucket: str,
) -> None:
    fill(ledger)
    before = list(stored_rows(ledger_tables(ledger)))

    with pytest.raises(ArchiveError, match=f"2024-01 in s3://{bucket}-missing"):
        retention_at(ledger, settings, f"s3://{bucket}-missing/x").run("test")

    assert list(stored_rows(ledger_tables(ledger))) == before


def test_the_archive_url_setting_takes_only_s3_urls() -> None:
    assert Settings(archive_url="s3://b/p").archive_location == "s3://b/p"
    assert Settings(archive_dir=Path("/a")).archive_location == "/a"
    for bad in ("http://b/p", "s3://", "s3:///p"):
        with pytest.raises(SettingsError, match="KEYLEDGER_ARCHIVE_URL"):
            Settings(archive_url=bad).validate()
    with pytest.raises(SettingsError, match="KEYLEDGER_ARCHIVE_URL"):
        Settings(archive_dir=Path("s3://b/p")).validate()
    with pytest.raises(ArchiveError, match="not an s3://bucket/prefix URL"):
        S3Archives("s3://b/p?x=1", client=object())


def _id(period: TokenPeriod, n: int) -> uuid.UUID:
    """The n-th token id of the period (a UUIDv7 of its first millisecond)."""
    return uuid.UUID(int=period.id_range()[0].int + n)
