"""A real nginx (Debian's package) in front of a running keyledger, as a load balancer would be.

It appends its client to `X-Forwarded-For` (`$proxy_add_x_forwarded_for`) and to `Forwarded`
(RFC 7239), and connects to keyledger from 127.0.0.1, the address the tests trust.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.e2e.server import free_port, stop

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONFIG = r"""{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    # RFC 7239 §4 and §6: this hop (an IPv6 address quoted, in brackets), appended to what
    # the client sent, as $proxy_add_x_forwarded_for does (the README's configuration)
    map $remote_addr $forwarded_for_node {{
        ~:      "for=\"[$remote_addr]\"";
        default "for=$remote_addr";
    }}
    map $http_forwarded $proxy_add_forwarded {{
        ""      "$forwarded_for_node";
        default "$http_forwarded, $forwarded_for_node";
    }}
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port} ipv6only=on;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_bind 127.0.0.1;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Forwarded $proxy_add_forwarded;
        }}
    }}
}}
"""


@contextmanager
def nginx_in_front(upstream: str, prefix: Path) -> Iterator[str]:
    """nginx proxying to `upstream` (a base URL on 127.0.0.1), listening on 127.0.0.1 and ::1;
    yields its IPv4 base URL once it answers `/readyz` through to keyledger (the same port on
    [::1] serves too); stopped afterwards."""
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # As root, nginx would hand its workers to `nobody`, who cannot enter pytest's tmp dirs.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        CONFIG.format(user=user, prefix=prefix, port=port, upstream=upstream.rsplit(":", 1)[1])
    )
    with (prefix / "stderr.log").open("wb") as out:
        proc = subprocess.Popen(
            [
                NGINX,
                "-c",
                str(conf),
                "-p",
                str(prefix),
                "-e",
                str(prefix / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"nginx exited: {_logs(prefix)}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx not proxying: {_logs(prefix)}")
            time.sleep(0.1)
        yield base
    finally:
        stop(proc)


def _logs(prefix: Path) -> str:
    return "\n".join(
        p.read_text(errors="replace")
        for p in (prefix / "stderr.log", prefix / "error.log")
        if p.exists()
    )
