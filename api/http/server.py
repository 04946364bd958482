"""Running the HTTP application: uvicorn with bounded request heads, one or more workers."""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from api.background import background_process
from api.http.head_limits import BoundedHttpToolsProtocol
from api.settings import Settings
from api.shutdown import STOP_SIGNALS
from api.tls_settings import MINIMUM_VERSION, ServerTls


def run(settings: Settings) -> None:
    """Serve `api.http.app:create_app` until stopped (each worker builds its own runtime),
    beside the process that runs the background jobs (api/background.py), which is told to
    stop as soon as the server is (not after the workers' graceful stop)."""
    config = uvicorn.Config(
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
    with background_process(settings) as stopping, _unwound_by_stop_signals():
        if config.workers > 1:
            _Supervisor(config, sockets=[config.bind_socket()], on_stop=stopping).run()
        else:
            server = _Server(config, on_stop=stopping)
            server.run()
            if not server.started:
                sys.exit(STARTUP_FAILURE)


class _Server(uvicorn.Server):
    """uvicorn's server (one worker, in this process), calling `on_stop` at a stop signal."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_stop = on_stop

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._on_stop()
        super().handle_exit(sig, frame)


class _Supervisor(Multiprocess):
    """uvicorn's supervisor of several workers, calling `on_stop` as a stop signal arrives
    (its own handlers only queue signals, which its loop reads twice a second)."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], on_stop: Callable[[], None]
    ) -> None:
        super().__init__(config, sockets=sockets)  # installs the queueing handlers
        for signum in STOP_SIGNALS:
            queue = signal.getsignal(signum)
            assert callable(queue)

            def forward(sig: int, frame: FrameType | None, queue: Any = queue) -> None:
                on_stop()
                queue(sig, frame)

            signal.signal(signum, forward)


@contextlib.contextmanager
def _unwound_by_stop_signals() -> Iterator[None]:
    """A stop signal ends the serving with `SystemExit` rather than the signal's default
    action: one uvicorn worker, run in this process, stops gracefully, then raises the signal
    again to the handler it found. So what runs the server (the background process) is stopped
    on the way out as well; the exit status is still the signal's (128 + its number)."""

    def unwind(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {signum: signal.signal(signum, unwind) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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
