"""A serving worker runs the background jobs itself only when they have no process of their
own (KEYLEDGER_BACKGROUND_JOBS): the jobs' elections would hide a worker running them too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import environment

# A worker as uvicorn's factory starts it (settings from the environment), in a process of
# its own: a server process tunes its interpreter and takes over stop signals.
WORKER = """
import json
from litestar.testing import TestClient
from api.http.app import create_app

app = create_app()
with TestClient(app):
    print(json.dumps(app.state.runtime.jobs.names))
"""


def _jobs_in_a_worker(tmp_path: Path, **extra: str) -> list[str]:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", **extra)
    ran = subprocess.run(
        [sys.executable, "-c", WORKER],
        env={**env, "PYTHONPATH": os.getcwd()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    names: list[str] = json.loads(ran.stdout.strip().splitlines()[-1])
    return names


@pytest.mark.parametrize(
    ("place", "workers"), [("auto", "1"), ("auto", "2"), ("process", "1"), ("process", "2")]
)
def test_a_worker_beside_a_background_process_runs_no_job(
    tmp_path: Path, place: str, workers: str
) -> None:
    jobs = _jobs_in_a_worker(tmp_path, KEYLEDGER_BACKGROUND_JOBS=place, KEYLEDGER_WORKERS=workers)
    assert jobs == []


@pytest.mark.parametrize(("place", "workers"), [("workers", "1"), ("workers", "2")])
def test_a_worker_without_a_background_process_runs_the_jobs(
    tmp_path: Path, place: str, workers: str
) -> None:
    jobs = _jobs_in_a_worker(tmp_path, KEYLEDGER_BACKGROUND_JOBS=place, KEYLEDGER_WORKERS=workers)
    assert jobs == ["analytics", "ledger"]  # and the relay, when Kafka is on
