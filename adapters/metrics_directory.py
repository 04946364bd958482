"""Where the processes of one `keyledger serve` keep their metrics: prometheus-client's
multiprocess mode, in a fresh directory every scrape reads and adds up.

prometheus-client chooses how a process keeps its values when it is first imported, so
`serve` sets the variable before anything imports it: its own process (the one worker, with
`--workers 1`), the workers and the background process all inherit it. Nothing here imports
prometheus-client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def metrics_directory() -> Iterator[None]:
    """A fresh metrics directory for this process and its children, removed afterwards; an
    operator's own `PROMETHEUS_MULTIPROC_DIR` is kept as it is."""
    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="keyledger-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)
