"""Token-event archives in a bucket of any S3-compatible store (AWS S3, MinIO, Ceph, R2...).

The same two objects as in a directory (adapters/token_archives.py), under the URL's prefix:
`s3://bucket/prefix/tokens-2026-11.jsonl.gz` and `...manifest.json`, the manifest uploaded
last, so an upload that stops midway leaves no archive. An archive is written to a local
temporary directory first (hashed as it is written), then uploaded; it is verified and read
from a downloaded copy, checked whole against its manifest before a row is handed out.

Credentials, region and endpoint come from the AWS SDK's own configuration (environment,
shared files, instance or pod roles): `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_REGION`, and `AWS_ENDPOINT_URL_S3` for a store other than AWS.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapters.token_archives import ArchiveDirectory, ArchiveError, Manifest, Row, file_names
from domain.token_periods import TokenPeriod


class S3Archives:
    """Archives under `s3://bucket/prefix`."""

    def __init__(self, url: str, client: Any = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ArchiveError(f"{url} is not an s3://bucket/prefix URL")
        self.url = url.rstrip("/")
        self.bucket = parts.netloc
        prefix = parts.path.strip("/")
        self._prefix = f"{prefix}/" if prefix else ""
        self._client = client if client is not None else _client()

    def __str__(self) -> str:
        return self.url

    def _key(self, name: str) -> str:
        return self._prefix + name

    def location(self, period: TokenPeriod) -> str:
        return f"s3://{self.bucket}/{self._key(file_names(period)[0])}"

    def write(
        self,
        period: TokenPeriod,
        rows: Iterable[Row],
        written_at: datetime,
        *,
        replace: bool = False,
    ) -> Manifest:
        """As `ArchiveDirectory.write`: the manifest is in the bucket when this returns, and
        not before; an existing archive is replaced only when asked, its manifest first."""
        data_name, manifest_name = file_names(period)
        with _errors(self, period):
            if self._exists(manifest_name):
                if not replace:
                    raise ArchiveError(f"an archive of {period} exists in {self} already")
                self._client.delete_object(Bucket=self.bucket, Key=self._key(manifest_name))
            with tempfile.TemporaryDirectory(prefix="keyledger-archive-") as staging:
                manifest = ArchiveDirectory(Path(staging)).write(period, rows, written_at)
                for name in (data_name, manifest_name):  # the manifest last
                    self._client.upload_file(
                        str(Path(staging) / name),
                        self.bucket,
                        self._key(name),
                        ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                    )
        return manifest

    def manifest(self, period: TokenPeriod) -> Manifest | None:
        with _errors(self, period):
            try:
                found = self._client.get_object(
                    Bucket=self.bucket, Key=self._key(file_names(period)[1])
                )
            except self._client.exceptions.NoSuchKey:
                return None
            return Manifest.parse(found["Body"].read().decode("utf-8"))

    def verify(self, period: TokenPeriod) -> tuple[Manifest | None, list[str]]:
        with tempfile.TemporaryDirectory(prefix="keyledger-archive-") as copy:
            return self._downloaded(period, Path(copy)).verify(period)

    def rows(self, period: TokenPeriod) -> Iterator[Row]:
        with tempfile.TemporaryDirectory(prefix="keyledger-archive-") as copy:
            yield from self._downloaded(period, Path(copy)).rows(period)

    def _downloaded(self, period: TokenPeriod, into: Path) -> ArchiveDirectory:
        """A local copy of what the bucket holds of the archive (a missing object stays
        missing: `verify` says so)."""
        with _errors(self, period):
            for name in file_names(period):
                if self._exists(name):
                    self._client.download_file(self.bucket, self._key(name), str(into / name))
        return ArchiveDirectory(into)

    def _exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True


def _client() -> Any:
    try:
        import boto3
    except ImportError:
        raise ArchiveError(
            "archives in an S3-compatible store need the s3 extra: pip install 'keyledger[s3]'"
        ) from None
    return boto3.client("s3")


@contextmanager
def _errors(archives: S3Archives, period: TokenPeriod) -> Iterator[None]:
    """The store's failures (credentials, network, a missing bucket) as `ArchiveError`s that
    say which archive and where."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (Boto3Error, BotoCoreError, ClientError, OSError) as exc:
        raise ArchiveError(f"the archive of {period} in {archives}: {exc}") from None
