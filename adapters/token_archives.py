"""Token-event archives: a period's token events kept outside the live store (issue 17).

An archive holds the token events of one period (the month, UTC, their tokens were issued in,
domain/token_periods.py) exactly as the store held them: after a header line, one JSON line
per event with its position, token id, version, topic and stored state in base64 (the line
`keyledger ledger export` writes, so every ledger leaf can be recomputed from it), in position
order (the order followers read the log in, so a replay can merge an archive back into it),
gzip-compressed (`tokens-2026-11.jsonl.gz`).

Beside it, the manifest (`tokens-2026-11.manifest.json`): the format, the period, how many
events and tokens, the first and last position, the SHA-256 of the compressed file and of
every block of 10,000 event lines, which is how `verify` says where an archive is damaged.
Each file is written under a temporary name, flushed to disk and renamed, the manifest last:
an archive without its manifest was interrupted and counts for nothing.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import secrets
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from domain.token_periods import TokenPeriod
from domain.token_retention import ArchiveError as ArchiveError  # raised here; named here too

ARCHIVE_FORMAT = "keyledger-token-archive/1"
BLOCK_LINES = 10_000
_READ_CHUNK = 1 << 20

# (position, token id, version, topic, stored state): a stored row, as the ledger reads it.
Row = tuple[int, UUID, int, str, bytes]


@dataclass(frozen=True)
class Manifest:
    """What an archive holds, and the hashes that prove it."""

    period: str
    file: str
    events: int
    tokens: int
    first_position: int | None
    last_position: int | None
    sha256: str
    blocks: list[str] = field(default_factory=list)
    written_at: str = ""
    format: str = ARCHIVE_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def parse(cls, text: str) -> Manifest:
        try:
            value = json.loads(text)
            if not isinstance(value, dict) or value.get("format") != ARCHIVE_FORMAT:
                raise ArchiveError(f"not a token archive manifest ({ARCHIVE_FORMAT})")
            manifest = cls(**value)
            TokenPeriod.named(manifest.period)
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ArchiveError(f"the manifest cannot be read: {exc}") from None
        return manifest


def file_names(period: TokenPeriod) -> tuple[str, str]:
    """The archive's data file and manifest names for `period`."""
    return f"tokens-{period.name}.jsonl.gz", f"tokens-{period.name}.manifest.json"


def _line(row: Row) -> bytes:
    position, token_id, version, topic, state = row
    return (
        json.dumps(
            {
                "position": position,
                "originator_id": str(token_id),
                "version": version,
                "topic": topic,
                "state": base64.b64encode(state).decode(),
            },
            separators=(",", ":"),
        )
        + "\n"
    ).encode()


def _row(line: bytes, number: int) -> Row:
    try:
        value = json.loads(line)
        return (
            int(value["position"]),
            UUID(value["originator_id"]),
            int(value["version"]),
            str(value["topic"]),
            base64.b64decode(value["state"], validate=True),
        )
    except (json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        raise ArchiveError(f"line {number} is not an archived event: {exc}") from None


def _replace_durably(temporary: Path, final: Path) -> None:
    with temporary.open("rb") as written:
        os.fsync(written.fileno())
    os.replace(temporary, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class Archives(Protocol):
    """Where archives are kept: a directory, or a bucket of an S3-compatible store."""

    def location(self, period: TokenPeriod) -> str:
        """Where the period's archived events are (a path or an `s3://` URL)."""

    def write(
        self, period: TokenPeriod, rows: Iterable[Row], written_at: datetime, *, replace: bool
    ) -> Manifest: ...

    def manifest(self, period: TokenPeriod) -> Manifest | None: ...

    def verify(self, period: TokenPeriod) -> tuple[Manifest | None, list[str]]: ...

    def rows(self, period: TokenPeriod) -> Iterator[Row]: ...


class NotAnArchiveFile(ValueError):
    """A name that is neither of an archive's two files."""


_FILE = re.compile(r"tokens-(\d{4}-\d{2})\.(?:manifest\.json|jsonl\.gz)")  # file_names'


def open_archives(where: str | Path) -> Archives:
    """The archives at `where`: `s3://bucket/prefix` (the `s3` extra), else a directory."""
    if _in_a_bucket(str(where)):
        from adapters.s3_archives import S3Archives

        return S3Archives(str(where))
    return ArchiveDirectory(Path(where))


def archives_holding(location: str) -> Archives:
    """The archives an archive's file (a path or an `s3://` URL, as `Archives.location`
    gives it) is in."""
    return open_archives(_split(location)[0])


def archive_file(location: str) -> tuple[Archives, TokenPeriod]:
    """The archives and the period of an archive named by either of its files (a path or an
    `s3://` URL); `NotAnArchiveFile`, or `NotAPeriod`, for another name."""
    where, name = _split(location)
    found = _FILE.fullmatch(name)
    if found is None:
        raise NotAnArchiveFile(
            f"{name} is not an archive file (tokens-YYYY-MM.manifest.json or "
            "tokens-YYYY-MM.jsonl.gz)"
        )
    period = TokenPeriod.named(found.group(1))
    return open_archives(where), period


def _in_a_bucket(where: str) -> bool:
    return where.startswith("s3://")


def _split(location: str) -> tuple[str, str]:
    """(where the archives are, the file's name) of a file's path or `s3://` URL."""
    if _in_a_bucket(location):
        where, _, name = location.rstrip("/").rpartition("/")
        return where, name
    path = Path(location)
    return str(path.parent), path.name


class ArchiveDirectory:
    """Archives as files in one directory (a mounted volume, an NFS share)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def location(self, period: TokenPeriod) -> str:
        """The archive's data file, as an absolute path (recorded by a removal: read back
        from any working directory)."""
        return str(self.path.absolute() / file_names(period)[0])

    def write(
        self,
        period: TokenPeriod,
        rows: Iterable[Row],
        written_at: datetime,
        *,
        replace: bool = False,
    ) -> Manifest:
        """Archive `rows` (the period's token events in position order); the manifest
        is on disk when this returns, and not before. An existing archive of the period is
        replaced only when asked (its manifest goes first, so a replacement that stops midway
        leaves no archive, never a manifest beside another archive's data)."""
        self.path.mkdir(parents=True, exist_ok=True)
        data_name, manifest_name = file_names(period)
        if (self.path / manifest_name).exists():
            if not replace:
                raise ArchiveError(f"an archive of {period} exists in {self.path} already")
            (self.path / manifest_name).unlink()
        temporary = self.path / f".{data_name}.{secrets.token_hex(6)}.partial"  # one per writer
        try:
            events, tokens, first, last, blocks = self._write_rows(period, rows, temporary)
        except BaseException:
            temporary.unlink(missing_ok=True)  # an interrupted archive leaves nothing behind
            raise
        manifest = Manifest(
            period=period.name,
            file=data_name,
            events=events,
            tokens=tokens,
            first_position=first,
            last_position=last,
            sha256=_file_sha256(temporary),
            blocks=blocks,
            written_at=written_at.isoformat(),
        )
        _replace_durably(temporary, self.path / data_name)
        manifest_temporary = self.path / f".{manifest_name}.{secrets.token_hex(6)}.partial"
        manifest_temporary.write_text(manifest.to_json(), encoding="utf-8")
        _replace_durably(manifest_temporary, self.path / manifest_name)
        return manifest

    @staticmethod
    def _write_rows(
        period: TokenPeriod, rows: Iterable[Row], temporary: Path
    ) -> tuple[int, int, int | None, int | None, list[str]]:
        events, tokens, first, last = 0, 0, None, None
        blocks: list[str] = []
        block = hashlib.sha256()
        previous: int | None = None
        with temporary.open("wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
                out.write(_header(period))
                for row in rows:
                    position, token_id, version = row[0], row[1], row[2]
                    if not period.holds(token_id):
                        raise ArchiveError(f"token {token_id} was not issued in {period}")
                    if previous is not None and position <= previous:
                        raise ArchiveError(f"rows out of position order at {position}")
                    tokens += version == 1  # a token's first event: it was issued
                    previous = position
                    line = _line(row)
                    out.write(line)
                    block.update(line)
                    events += 1
                    first = position if first is None else min(first, position)
                    last = position if last is None else max(last, position)
                    if events % BLOCK_LINES == 0:
                        blocks.append(block.hexdigest())
                        block = hashlib.sha256()
            if events % BLOCK_LINES:
                blocks.append(block.hexdigest())
        return events, tokens, first, last, blocks

    def manifest(self, period: TokenPeriod) -> Manifest | None:
        """The period's manifest; None when there is none (never written, or interrupted)."""
        path = self.path / file_names(period)[1]
        if not path.exists():
            return None
        return Manifest.parse(path.read_text(encoding="utf-8"))

    def verify(self, period: TokenPeriod) -> tuple[Manifest | None, list[str]]:
        """The manifest and every problem found (none: the archive is whole)."""
        try:
            manifest = self.manifest(period)
        except ArchiveError as exc:
            return None, [f"{file_names(period)[1]}: {exc}"]
        if manifest is None:
            return None, [f"{file_names(period)[1]} is missing: no complete archive of {period}"]
        return manifest, list(_problems(self.path / manifest.file, manifest, period))

    def rows(self, period: TokenPeriod) -> Iterator[Row]:
        """The archived events, after the whole archive has been verified."""
        manifest, problems = self.verify(period)
        if problems or manifest is None:
            raise ArchiveError("; ".join(problems))
        with gzip.open(self.path / manifest.file, "rb") as lines:
            next(lines)
            for number, line in enumerate(lines, 2):
                yield _row(line, number)


def _header(period: TokenPeriod) -> bytes:
    return (json.dumps({"format": ARCHIVE_FORMAT, "period": period.name}) + "\n").encode()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _problems(path: Path, manifest: Manifest, period: TokenPeriod) -> Iterator[str]:
    if manifest.period != period.name:
        yield f"the manifest is for {manifest.period}, not {period}"
    if manifest.file != file_names(period)[0]:  # never a file elsewhere: only its own
        yield f"the manifest names {manifest.file!r}, not {file_names(period)[0]}"
        return
    if not path.exists():
        yield f"{path.name} is missing"
        return
    actual = _file_sha256(path)
    if actual != manifest.sha256:
        yield f"{path.name}: SHA-256 {actual}, the manifest says {manifest.sha256}"
    yield from _line_problems(path, manifest, period)


def _line_problems(path: Path, manifest: Manifest, period: TokenPeriod) -> Iterator[str]:
    events, tokens, number = 0, 0, 1
    previous: int | None = None
    block = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as lines:
            header = next(lines, b"")
            if header != _header(period):
                yield f"line 1 is not the header of a {period} archive"
            for number, line in enumerate(lines, 2):
                block.update(line)
                events += 1
                try:
                    position, token_id, version, _, _ = _row(line, number)
                except ArchiveError as exc:
                    yield str(exc)
                else:
                    if not period.holds(token_id):
                        yield f"line {number}: token {token_id} was not issued in {period}"
                    if previous is not None and position <= previous:
                        yield f"line {number}: out of position order"
                    tokens += version == 1
                    previous = position
                    if not (
                        manifest.first_position is not None
                        and manifest.last_position is not None
                        and manifest.first_position <= position <= manifest.last_position
                    ):
                        yield f"line {number}: position {position} outside the manifest's range"
                if events % BLOCK_LINES == 0:
                    yield from _block_problem(manifest, events, block.hexdigest())
                    block = hashlib.sha256()
    except (OSError, EOFError, zlib.error) as exc:
        yield f"{path.name}: the compressed stream breaks after line {number}: {exc}"
        return
    if events % BLOCK_LINES:
        yield from _block_problem(manifest, events, block.hexdigest())
    if len(manifest.blocks) != -(-events // BLOCK_LINES):
        yield f"{len(manifest.blocks)} block hashes in the manifest for {events} events"
    if (events, tokens) != (manifest.events, manifest.tokens):
        yield (
            f"{events} events of {tokens} tokens; the manifest says "
            f"{manifest.events} events of {manifest.tokens} tokens"
        )


def _block_problem(manifest: Manifest, events: int, digest: str) -> Iterator[str]:
    index = (events - 1) // BLOCK_LINES
    if index >= len(manifest.blocks) or manifest.blocks[index] != digest:
        first = index * BLOCK_LINES + 2  # file lines: the header is line 1
        yield f"lines {first}-{events + 1} differ from the manifest (block {index + 1})"


def describe(manifest: Manifest) -> dict[str, Any]:
    """The manifest as the CLI shows it."""
    return asdict(manifest) | {"blocks": len(manifest.blocks)}
