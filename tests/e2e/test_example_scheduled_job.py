"""examples/scheduled-job, run as its README says against a live `keyledger serve`."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.examples import EXAMPLES, program, run_setup, tokens_issued
from tests.e2e.server import cli, environment, free_port, serve

FOLDER = "scheduled-job"


@dataclass
class Night:
    env: dict[str, str]
    database_url: str
    tmp: Path


@pytest.fixture
def night(tmp_path: Path) -> Iterator[Night]:
    """keyledger and the stock API running; the job's client registered by the README."""
    database_url = f"sqlite:///{tmp_path}/k.db"
    env = environment(database_url, tmp_path / "keys", free_port())
    stock_port = free_port()
    with serve(env, log=tmp_path / "keyledger.log") as base:
        job_env = {
            **env,
            **run_setup(FOLDER, env),
            "KEYLEDGER_URL": base,
            "STOCK_URL": f"http://127.0.0.1:{stock_port}",
        }
        with program(
            "microservices",
            "stock_api.py",
            "--port",
            str(stock_port),
            env=job_env,
            log=tmp_path / "stock.log",
            ready_url=f"{job_env['STOCK_URL']}/stock",
        ):
            yield Night(job_env, database_url, tmp_path)


def run_job(night: Night, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "nightly_sync.py", "--output", str(night.tmp / "stock.csv")],
        cwd=EXAMPLES / FOLDER,
        env={**night.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_run_writes_the_stock_csv_with_one_token(night: Night) -> None:
    done = run_job(night)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"nightly-sync: wrote 3 items to {night.tmp / 'stock.csv'}"
    with (night.tmp / "stock.csv").open() as rows:
        assert {row["sku"] for row in csv.DictReader(rows)} == {"apple", "pear", "plum"}
    assert tokens_issued(night.database_url, night.env["CLIENT_ID"]) == 1


def test_a_wrong_secret_exits_2_naming_invalid_client(night: Night) -> None:
    done = run_job(night, CLIENT_SECRET="not-the-secret")
    assert done.returncode == 2
    assert done.stderr.startswith("nightly-sync: invalid_client: keyledger refused")
    assert not (night.tmp / "stock.csv").exists()


def test_a_missing_secret_exits_2(night: Night) -> None:
    env = {k: v for k, v in night.env.items() if k != "CLIENT_SECRET"}
    done = subprocess.run(
        [sys.executable, "nightly_sync.py", "--output", str(night.tmp / "x.csv")],
        cwd=EXAMPLES / FOLDER,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "nightly-sync: CLIENT_SECRET is not set",
    )


def test_a_client_without_the_scope_exits_3_naming_invalid_scope(night: Night) -> None:
    changed = cli(night.env, "clients", "set-scopes", night.env["CLIENT_ID"], "--scope", "other")
    assert changed.returncode == 0, changed.stderr
    time.sleep(1.2)  # the server follows the log within a second
    done = run_job(night)
    assert done.returncode == 3
    assert done.stderr.startswith("nightly-sync: invalid_scope: the client may not request")


def test_a_client_without_the_audience_exits_3_naming_invalid_target(night: Night) -> None:
    changed = cli(night.env, "clients", "set-audiences", night.env["CLIENT_ID"])
    assert changed.returncode == 0, changed.stderr
    time.sleep(1.2)
    done = run_job(night)
    assert done.returncode == 3
    assert done.stderr.startswith("nightly-sync: invalid_target:")


def test_keyledger_unreachable_exits_1(night: Night) -> None:
    done = run_job(night, KEYLEDGER_URL=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert done.stderr.startswith("nightly-sync: ConnectError:")
