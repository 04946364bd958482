"""Shared fixtures: a real PostgreSQL (a fresh database per test), SQLite files, settings."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql import factories

from api.settings import Settings

PG_HOST = os.environ.get("KEYLEDGER_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("KEYLEDGER_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("KEYLEDGER_TEST_PG_USER", "postgres")


def _pg_ctl() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True):
        return str(candidate)
    return None


# Started only when no server answers on 127.0.0.1:5432 (pytest-postgresql, local binaries).
postgresql_fallback = factories.postgresql_proc(executable=_pg_ctl(), port=None)


def _server_answers(host: str, port: int, user: str) -> bool:
    try:
        with psycopg.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> tuple[str, int, str, str]:
    """(host, port, user, password) of a PostgreSQL server the tests may create databases on."""
    if _server_answers(PG_HOST, PG_PORT, PG_USER):
        return PG_HOST, PG_PORT, PG_USER, ""
    proc = request.getfixturevalue("postgresql_fallback")
    return proc.host, int(proc.port), proc.user, proc.password or ""


@pytest.fixture
def postgres_url(pg_server: tuple[str, int, str, str]) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    host, port, user, password = pg_server
    name = f"keyledger_test_{uuid.uuid4().hex[:12]}"
    admin = {"host": host, "port": port, "user": user, "password": password, "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    auth = f"{user}:{password}" if password else user
    yield f"postgresql://{auth}@{host}:{port}/{name}"
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/keyledger.db"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The contract suites run once per event store backend."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        keys_dir=tmp_path / "keys",
        issuer="https://auth.example.test",
        follow_interval=0.02,
    )
