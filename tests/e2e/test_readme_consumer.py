"""The README's aiokafka consumer, run as written against a live `keyledger serve`."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.e2e.server import cli_json, embedded_environment, serve

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_consumer() -> str:
    section = README.read_text().split("### Consuming the audit topic", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README lost its consumer example"
    return match.group(1)


def test_the_readme_consumer_prints_each_event_once(tmp_path: Path) -> None:
    code = readme_consumer()
    assert len(code.strip().splitlines()) <= 16
    env, broker_port = embedded_environment(tmp_path)
    with serve(env, log=tmp_path / "serve.log") as base:
        created = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
        form = {"grant_type": "client_credentials", "client_id": created["client_id"]}
        assert httpx.post(f"{base}/oauth2/token", data={**form, "client_secret": "no"}).is_error
        token = httpx.post(
            f"{base}/oauth2/token", data={**form, "client_secret": created["client_secret"]}
        )
        assert token.status_code == 200
        consumer = subprocess.Popen(
            [sys.executable, "-c", code.replace("127.0.0.1:9092", f"127.0.0.1:{broker_port}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: list[str] = []
        stdout = consumer.stdout
        assert stdout is not None
        reader = threading.Thread(
            target=lambda: lines.extend(s.strip() for s in stdout), daemon=True
        )
        reader.start()
        try:
            deadline = time.monotonic() + 30
            while len(lines) < 8 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            consumer.kill()
            consumer.wait()
    types = sorted(line.split()[1] for line in lines)
    assert types == [
        "keyledger.client.registered.v1",  # the CLI's admin client
        "keyledger.client.registered.v1",
        "keyledger.installation.initialised.v1",  # the first start: the installation's keys
        "keyledger.security.authentication_failed.v1",
        "keyledger.signing_keys.key_generated.v1",  # the server's first start: its first key
        "keyledger.signing_keys.started.v1",
        "keyledger.token.issued.v1",
        "keyledger.token.issued.v1",  # the CLI admin's own token
    ]
    about_the_client = [
        line
        for line in lines
        if ".signing_keys." not in line
        and ".installation." not in line
        and env["KEYLEDGER_ADMIN_CLIENT_ID"] not in line
    ]
    assert all(created["client_id"] in line for line in about_the_client)
    assert any(line.endswith("wrong_secret") for line in lines)
