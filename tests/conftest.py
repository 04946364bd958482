"""Shared fixtures: a real PostgreSQL (a fresh database per test), SQLite files, settings."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql import factories

from adapters.kafka import EmbeddedBroker
from api.settings import Settings
from tests.pg_cluster import LocalCluster, pg_ctl_path

PG_HOST = os.environ.get("KEYLEDGER_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("KEYLEDGER_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("KEYLEDGER_TEST_PG_USER", "postgres")


# Started only when no server answers on 127.0.0.1:5432 (pytest-postgresql, local binaries).
postgresql_fallback = factories.postgresql_proc(executable=pg_ctl_path(), port=None)


def _server_answers(host: str, port: int, user: str) -> bool:
    try:
        with psycopg.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def _cluster_as_postgres_user() -> Iterator[tuple[str, int, str, str]]:
    """A throwaway cluster run as the `postgres` OS user (PostgreSQL refuses root)."""
    cluster = LocalCluster()
    cluster.start()
    try:
        yield "127.0.0.1", cluster.port, "postgres", ""
    finally:
        cluster.stop()
        cluster.remove()


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, str, str]]:
    """(host, port, user, password) of a PostgreSQL server the tests may create databases on.

    The one on 127.0.0.1:5432 when it answers; else a throwaway cluster from the local
    binaries, started by pytest-postgresql (or, when running as root, as the postgres user).
    """
    if _server_answers(PG_HOST, PG_PORT, PG_USER):
        yield PG_HOST, PG_PORT, PG_USER, ""
    elif os.geteuid() == 0:
        with _cluster_as_postgres_user() as server:
            yield server
    else:
        proc = request.getfixturevalue("postgresql_fallback")
        yield proc.host, int(proc.port), proc.user, proc.password or ""


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
        kafka_bootstrap="off",  # tests that publish to Kafka name their own broker
    )


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker (tansu, in memory) on a free loopback port."""
    with EmbeddedBroker("127.0.0.1", free_port()) as running:
        yield running


@pytest.fixture
def kafka_settings(settings: Settings, broker: EmbeddedBroker) -> Settings:
    """`settings` publishing to the test broker, on a topic of this test's own."""
    return replace(
        settings,
        kafka_bootstrap=broker.bootstrap,
        audit_topic=f"audit-{uuid.uuid4().hex[:12]}",
        relay_backoff_max=0.5,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
