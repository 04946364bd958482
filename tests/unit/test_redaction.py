"""Anything shaped like a keyledger secret is redacted wherever caller input is echoed."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from io import StringIO

import structlog

from adapters.client_secrets import SECRET_PREFIX, generate_secret
from api.logs import configure_logging
from domain.oauth_errors import InvalidClient
from domain.observations import SecurityObservation
from domain.redaction import REDACTED, redact
from projections.audit_format import security_message


def test_a_generated_secret_is_redacted_wherever_it_stands() -> None:
    secret = generate_secret()
    assert redact(secret) == REDACTED == "kl_secret_[REDACTED]"
    assert redact(f"id={secret}&x=1") == f"id={REDACTED}&x=1"
    assert redact(f"{secret} {secret}") == f"{REDACTED} {REDACTED}"
    assert redact(redact(secret)) == REDACTED  # idempotent
    assert redact("a plain client id") == "a plain client id"


def test_the_redacted_prefix_is_the_one_secrets_are_generated_with() -> None:
    assert SECRET_PREFIX == "kl_secret_"
    assert generate_secret().startswith(SECRET_PREFIX)


def test_an_observation_of_a_swapped_id_and_secret_carries_no_secret() -> None:
    secret = generate_secret()
    observation = SecurityObservation.of_error(
        InvalidClient(reason="unknown_client"),
        endpoint="/oauth2/token",
        at=datetime(2026, 11, 20, tzinfo=UTC),
        client_id=secret,
        auth_method="client_secret_basic",
        source_ip="192.0.2.7",
        user_agent=f"agent {secret}",
        requested_scope=f"a {secret}",
        requested_resources=(f"https://x/{secret}",),
    )
    assert observation is not None
    key, value = security_message(observation, "https://auth.example.test")
    assert secret.removeprefix(SECRET_PREFIX) not in (key + value).decode()
    message = json.loads(value)
    assert key.decode() == message["subject"] == message["data"]["client_id"] == REDACTED
    assert message["data"]["user_agent"] == f"agent {REDACTED}"
    assert message["data"]["requested_scope"] == f"a {REDACTED}"
    assert message["data"]["requested_resources"] == [f"https://x/{REDACTED}"]


def test_log_lines_have_secrets_redacted_in_messages_fields_and_exceptions() -> None:
    secret = generate_secret()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    stream = StringIO()
    try:
        configure_logging("debug")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        log = logging.getLogger("keyledger.test")
        log.warning("client %s tried", secret)
        try:
            raise ValueError(f"bad id {secret}")
        except ValueError:
            log.exception("failed")
        structlog.stdlib.get_logger("keyledger.test").info("bound", client_id=secret)
    finally:
        root.handlers[:], level, config = saved
        root.setLevel(level)
        structlog.configure(**config)
    text = stream.getvalue()
    assert len(text.splitlines()) >= 3
    assert secret.removeprefix(SECRET_PREFIX) not in text
    assert text.count(REDACTED) >= 3
