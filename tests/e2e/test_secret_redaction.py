"""A secret sent where a client id (or any other caller text) belongs is never published or
logged: `keyledger serve` with its embedded broker, at debug level."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from adapters.client_secrets import SECRET_PREFIX
from domain.redaction import REDACTED
from tests.e2e.server import cli_json, embedded_environment, serve
from tests.kafka import consume

FORM = {"grant_type": "client_credentials"}


def test_a_swapped_client_id_and_secret_reach_neither_the_topic_nor_the_logs(
    tmp_path: Path,
) -> None:
    env, broker_port = embedded_environment(tmp_path)
    env["KEYLEDGER_LOG_LEVEL"] = "debug"
    with serve(env, log=tmp_path / "serve.log") as base:
        created = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
        cid, secret = created["client_id"], created["client_secret"]
        time.sleep(1.2)  # visible to the server
        attempts = [
            httpx.post(f"{base}/oauth2/token", data=FORM, auth=(secret, cid)),
            httpx.post(
                f"{base}/oauth2/token", data={**FORM, "client_id": secret, "client_secret": cid}
            ),
            httpx.post(
                f"{base}/oauth2/token",
                data={**FORM, "scope": secret},
                auth=(cid, "kl_secret_guess"),
                headers={"User-Agent": f"tool/{secret}", "X-Request-Id": secret},
            ),
            httpx.post(f"{base}/oauth2/introspect", data={"token": "x"}, auth=(secret, cid)),
            httpx.get(f"{base}/admin/clients/{secret}"),
        ]
        for response in attempts:
            assert response.status_code in (401, 404), response.text
            assert secret not in response.text
            assert secret not in str(response.headers)  # not even as the echoed request id
        records = asyncio.run(
            consume(
                f"127.0.0.1:{broker_port}",
                "keyledger.audit.v1",
                lambda rs: sum(r.type.startswith("keyledger.security.") for r in rs) >= 3,
            )
        )
    hidden = secret.removeprefix(SECRET_PREFIX)
    observed = [r for r in records if r.type.startswith("keyledger.security.")]
    assert len(observed) >= 3
    for record in records:
        assert hidden not in record.key
        assert hidden not in str(record.message)
    assert REDACTED in {r.message.get("subject") for r in observed}
    log = (tmp_path / "serve.log").read_text()
    assert log.count("\n") > 10
    assert hidden not in log
