"""A lock by name across processes and hosts: one rebuild of a projection at a time.

PostgreSQL: a session advisory lock on a connection of its own, released when the holder
closes it or dies. SQLite (one machine): an exclusive `flock` on a file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg


def sqlite_path(database_url: str) -> Path | None:
    """The file of a `sqlite:///` URL; None for any other database."""
    url = urlsplit(database_url)
    if url.scheme != "sqlite":
        return None
    return Path(unquote(url.path[1:] if url.path.startswith("/") else url.path))


@contextlib.contextmanager
def exclusive(database_url: str, name: str) -> Iterator[bool]:
    """Try to take the lock `name` without waiting; yields whether it is held (until exit)."""
    path = sqlite_path(database_url)
    if path is not None:
        fd = os.open(f"{path}.{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing the file releases the flock
        return
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (f"keyledger:{name}",)
        ).fetchone()
        yield bool(row and row[0])  # closing the session releases the advisory lock
