"""What the orchestrators ask a running server, asked of a real one: the Kubernetes probes and
the ServiceMonitor's scrape path of deploy/kubernetes, and the image's HEALTHCHECK.

The server runs the API container's own command and literal variables, on loopback and a
free port instead of 0.0.0.0:8000.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.dockerfile import stages
from tests.e2e.server import KEYLEDGER, environment, free_port, serve, stop
from tests.kubernetes_manifests import RENDERINGS, api, main_container, named


def image_health_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The runtime stage's HEALTHCHECK command, with this environment's Python."""
    check = stages()[-1].last("HEALTHCHECK")
    assert check is not None
    argv = check.exec_form
    assert argv is not None
    assert argv[0] == "python"
    return subprocess.run(
        [sys.executable, *argv[1:]], env=env, capture_output=True, text=True, timeout=30
    )


PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def ready_within(server: subprocess.Popen[bytes], url: str, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert server.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def api_container_command(port: int) -> tuple[list[str], dict[str, str]]:
    container: dict[str, Any] = main_container(api(RENDERINGS["base"]))
    command = list(container["command"])
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    literal = {v["name"]: v["value"] for v in container["env"] if "value" in v}
    return command, literal


def test_the_api_container_answers_its_probes_and_scrape_path_and_writes_only_to_tmp(
    tmp_path: Path, postgres_url: str
) -> None:
    """As in the pod: PostgreSQL, the secrets from variables, a working directory it cannot
    be allowed to write (the read-only root) and /tmp (the emptyDir)."""
    port = free_port()
    command, literal = api_container_command(port)
    assert command[:2] == ["keyledger", "serve"]
    keys, workdir, tmp = tmp_path / "keys", tmp_path / "root", tmp_path / "tmp"
    workdir.mkdir()
    tmp.mkdir()
    env = environment(
        postgres_url,
        keys,
        port,
        install=False,
        KEYLEDGER_KEY_ENCRYPTION_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        KEYLEDGER_SECRET_PEPPER=secrets.token_urlsafe(48),
        TMPDIR=str(tmp),
        **literal,
    )
    container = main_container(api(RENDERINGS["base"]))
    paths = {probe: container[probe]["httpGet"]["path"] for probe in PROBES}
    monitor = named(RENDERINGS["base"], "ServiceMonitor")
    paths["scrape"] = monitor["spec"]["endpoints"][0]["path"]
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [KEYLEDGER, *command[1:]], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            ready_within(server, f"{base}{paths['readinessProbe']}", tmp_path / "serve.log")
            answers = {name: httpx.get(f"{base}{path}", timeout=5) for name, path in paths.items()}
        finally:
            stop(server)
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(paths, 200)
    assert answers["scrape"].headers["content-type"].startswith("text/plain")
    assert "keyledger_" in answers["scrape"].text
    assert list(workdir.iterdir()) == []
    assert not keys.exists()


def test_the_image_health_check_passes_while_the_server_is_ready_and_fails_without_it(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", port)
    env["KEYLEDGER_HOST"] = "0.0.0.0"  # as the image's CMD binds; the check asks loopback
    before = image_health_check(env)
    assert before.returncode == 1
    assert before.stderr.startswith(f"not ready: http://127.0.0.1:{port}/readyz")
    with serve(env, "--host", "127.0.0.1", log=tmp_path / "serve.log", admin=False):
        during = image_health_check(env)
        assert during.returncode == 0, during.stderr
    after = image_health_check(env)
    assert after.returncode == 1


def test_a_head_probe_gets_the_get_answer_without_its_body_on_a_kept_alive_connection(
    tmp_path: Path,
) -> None:
    """Load balancers and uptime checks probe with HEAD (RFC 9110 §9.3.2): the server answers
    it as GET, writes no body, and the connection serves the next request."""
    port = free_port()
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", port)
    with serve(env, "--host", "127.0.0.1", log=tmp_path / "serve.log", admin=False):
        got = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(
                b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            )
            answers = read_until(conn, got.content)
    head, rest = answers.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert f"content-length: {len(got.content)}".encode() in head.lower()
    assert rest.startswith(b"HTTP/1.1 200 ")  # no body between the two answers
    assert rest.endswith(b"\r\n\r\n" + got.content)


def read_until(conn: socket.socket, ending: bytes) -> bytes:
    received = b""
    while not received.endswith(ending):
        chunk = conn.recv(65536)
        assert chunk, received
        received += chunk
    return received
