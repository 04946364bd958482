"""Running the HTTP application: uvicorn with bounded request heads, one or more workers."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

import uvicorn

from adapters.metrics import MULTIPROC_ENV
from api.http.head_limits import BoundedHttpToolsProtocol
from api.settings import Settings


def run(settings: Settings) -> None:
    """Serve `api.http.app:create_app` until stopped (each worker builds its own runtime)."""
    with metrics_directory(settings.workers):
        uvicorn.run(
            "api.http.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            http=BoundedHttpToolsProtocol,  # httptools, with header size and count limits
            loop="uvloop",
            access_log=False,
            log_config=None,  # each worker's create_app configures JSON logging
            log_level=settings.log_level,
            timeout_graceful_shutdown=10,
        )


@contextlib.contextmanager
def metrics_directory(workers: int) -> Iterator[None]:
    """With several workers, their metrics go to files in a fresh directory each scrape reads
    (prometheus-client's multiprocess mode); the workers inherit the variable."""
    if workers < 2 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="keyledger-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)
