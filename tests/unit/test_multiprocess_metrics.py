"""Under `serve`, every process keeps its metrics in files of its own (prometheus-client's
multiprocess mode, adapters/metrics.py): the process id is kept rather than asked for on
every increment, a forked child still counts in a file of its own, and a scrape while a
process is creating its file still answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

COUNT_IN_PARENT_AND_CHILD = """
import json, os
from prometheus_client import CollectorRegistry, multiprocess
from adapters.metrics import RELAY_PUBLISHED

RELAY_PUBLISHED.inc(3)
child = os.fork()
if child == 0:
    RELAY_PUBLISHED.inc(4)
    os._exit(0)
os.waitpid(child, 0)
RELAY_PUBLISHED.inc(5)
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
total = registry.get_sample_value("keyledger_relay_published_events_total")
print(json.dumps({"total": total, "parent": os.getpid(), "child": child}))
"""


def _run(directory: Path) -> dict[str, int]:
    ran = subprocess.run(
        [sys.executable, "-c", COUNT_IN_PARENT_AND_CHILD],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": os.getcwd()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    result: dict[str, int] = json.loads(ran.stdout.strip().splitlines()[-1])
    return result


def test_a_forked_child_counts_in_its_own_file_and_nothing_is_lost(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result["total"] == 3 + 4 + 5
    assert (tmp_path / f"counter_{result['parent']}.db").exists()
    assert (tmp_path / f"counter_{result['child']}.db").exists()


SCRAPE_BESIDE_A_FILE_BEING_CREATED = """
import os, sys
from adapters.metrics import RELAY_PUBLISHED, exposition

RELAY_PUBLISHED.inc(7)
open(os.path.join(sys.argv[1], "counter_4194304.db"), "wb").close()  # created, not yet sized
print(exposition().decode())
"""


def test_a_scrape_as_a_process_creates_its_file_still_answers(tmp_path: Path) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", SCRAPE_BESIDE_A_FILE_BEING_CREATED, str(tmp_path)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": os.getcwd()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert "keyledger_relay_published_events_total 7.0" in ran.stdout
