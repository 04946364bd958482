"""Running the HTTP application: uvicorn with bounded request heads, one or more workers."""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from adapters.metrics import MULTIPROC_ENV
from api.http.head_limits import BoundedHttpToolsProtocol
from api.settings import Settings
from api.tls_settings import MINIMUM_VERSION, ServerTls


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
            # uvicorn would otherwise rewrite the client address from X-Forwarded-For for
            # peers in FORWARDED_ALLOW_IPS (127.0.0.1 by default), behind our back:
            # KEYLEDGER_TRUSTED_PROXIES alone decides (api/http/client_address.py).
            proxy_headers=False,
            log_config=None,  # each worker's create_app configures JSON logging
            log_level=settings.log_level,
            timeout_graceful_shutdown=5,  # for requests in flight (api/shutdown.py)
            **tls_options(settings.server_tls),
        )


def tls_options(tls: ServerTls | None) -> dict[str, Any]:
    """uvicorn's TLS options: the certificate and key, TLS 1.2 at least, and with a client
    CA, client certificates asked for and verified against it when sent (`CERT_OPTIONAL`)."""
    if tls is None:
        return {}
    return {
        "ssl_certfile": tls.cert_file,
        "ssl_keyfile": tls.key_file,
        "ssl_ca_certs": tls.client_ca_file,
        "ssl_cert_reqs": ssl.CERT_OPTIONAL if tls.client_ca_file else ssl.CERT_NONE,
        "ssl_context_factory": tls_context,
    }


def tls_context(config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's context from the options above, refusing TLS 1.0 and 1.1 (module-level: the
    workers receive it pickled)."""
    context = default()
    context.minimum_version = MINIMUM_VERSION
    return context


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
