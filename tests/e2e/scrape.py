"""Scraping a real process's `/metrics`, and running `keyledger relay` and `keyledger detect`
with their metrics port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import KEYLEDGER, free_port, stop

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(labels)[label] for (n, labels) in samples if n == name and label in dict(labels)}


def wait_until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        time.sleep(0.2)


@contextmanager
def service(env: dict[str, str], command: str, log: Path) -> Iterator[str]:
    """`keyledger relay` or `keyledger detect` on a free metrics port; yields its metrics URL
    once it answers; stopped (SIGTERM) afterwards."""
    port = free_port()
    run_env = {**env, "KEYLEDGER_METRICS_PORT": str(port), "KEYLEDGER_LOG_LEVEL": "info"}
    url = f"http://127.0.0.1:{port}/metrics"
    with log.open("wb") as out:
        proc = subprocess.Popen([KEYLEDGER, command], env=run_env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, f"{command} exited: {log.read_text()}"
                try:
                    if httpx.get(url, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{command} metrics: {log.read_text()}"
                time.sleep(0.1)
            yield url
        finally:
            stop(proc)
