"""The Kafka security settings, checked together: most mistakes are combinations (a SASL
protocol without a user, a CA file with PLAINTEXT), and each is named in the message.

Errors are `ValueError`s naming the variable; `api.settings` turns them into `SettingsError`.
No message carries the password, and file contents are never quoted.
"""

from __future__ import annotations

import ssl
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.kafka_security import SASL_MECHANISMS, SECURITY_PROTOCOLS, KafkaSecurity

if TYPE_CHECKING:
    from api.settings import Settings

PROTOCOL = "KEYLEDGER_KAFKA_SECURITY_PROTOCOL"
SASL_VARIABLES = {
    "kafka_sasl_mechanism": "KEYLEDGER_KAFKA_SASL_MECHANISM",
    "kafka_sasl_username": "KEYLEDGER_KAFKA_SASL_USERNAME",
    "kafka_sasl_password": "KEYLEDGER_KAFKA_SASL_PASSWORD",
    "kafka_sasl_password_file": "KEYLEDGER_KAFKA_SASL_PASSWORD_FILE",
}
SSL_VARIABLES = {
    "kafka_ssl_cafile": "KEYLEDGER_KAFKA_SSL_CAFILE",
    "kafka_ssl_certfile": "KEYLEDGER_KAFKA_SSL_CERTFILE",
    "kafka_ssl_keyfile": "KEYLEDGER_KAFKA_SSL_KEYFILE",
}


def kafka_security(settings: Settings) -> KafkaSecurity:
    """The TLS and SASL every Kafka client gets; a `ValueError` naming the variable if unusable."""
    protocol = settings.kafka_security_protocol
    if protocol not in SECURITY_PROTOCOLS:
        raise ValueError(f"{PROTOCOL} must be one of {', '.join(SECURITY_PROTOCOLS)}")
    if protocol != "PLAINTEXT" and settings.embedded_broker:
        raise ValueError(
            f"{PROTOCOL}={protocol} needs KEYLEDGER_KAFKA_BOOTSTRAP: the embedded broker "
            "speaks PLAINTEXT only"
        )
    sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
    tls = protocol in ("SSL", "SASL_SSL")
    _refuse_unused(settings, SASL_VARIABLES, protocol, "SASL_PLAINTEXT or SASL_SSL", used=sasl)
    _refuse_unused(settings, SSL_VARIABLES, protocol, "SSL or SASL_SSL", used=tls)
    if not tls and not settings.kafka_ssl_check_hostname:
        raise ValueError(
            f"KEYLEDGER_KAFKA_SSL_CHECK_HOSTNAME=false needs {PROTOCOL} SSL or SASL_SSL"
        )
    security = KafkaSecurity(
        protocol=protocol, ssl_check_hostname=settings.kafka_ssl_check_hostname
    )
    if sasl:
        security = _with_sasl(settings, security)
    if tls:
        security = _with_tls(settings, security)
    return security


def _refuse_unused(
    settings: Settings, variables: dict[str, str], protocol: str, needs: str, *, used: bool
) -> None:
    if used:
        return
    for name, variable in variables.items():
        if getattr(settings, name) not in (None, ""):
            raise ValueError(f"{variable} is set, but {PROTOCOL}={protocol}: it needs {needs}")


def _with_sasl(settings: Settings, security: KafkaSecurity) -> KafkaSecurity:
    protocol = security.protocol
    mechanism = settings.kafka_sasl_mechanism
    if mechanism not in SASL_MECHANISMS:
        raise ValueError(
            f"{PROTOCOL}={protocol} needs KEYLEDGER_KAFKA_SASL_MECHANISM: "
            f"one of {', '.join(SASL_MECHANISMS)}"
        )
    if not settings.kafka_sasl_username:
        raise ValueError(f"{PROTOCOL}={protocol} needs KEYLEDGER_KAFKA_SASL_USERNAME")
    given = settings.kafka_sasl_password, settings.kafka_sasl_password_file
    if all(given) or not any(given):
        raise ValueError(
            f"{PROTOCOL}={protocol} needs exactly one of KEYLEDGER_KAFKA_SASL_PASSWORD and "
            "KEYLEDGER_KAFKA_SASL_PASSWORD_FILE"
        )
    password = settings.kafka_sasl_password or _password_from(settings.kafka_sasl_password_file)
    return replace(
        security,
        sasl_mechanism=mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=password,
    )


def _password_from(path: str | None) -> str:
    """A mounted secret's first line (Kubernetes and compose secrets end with no newline or one)."""
    variable = "KEYLEDGER_KAFKA_SASL_PASSWORD_FILE"
    try:
        password = Path(str(path)).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{variable}={path} cannot be read: {_why(exc)}") from None
    if not password:
        raise ValueError(f"{variable}={path} is empty")
    return password


def _with_tls(settings: Settings, security: KafkaSecurity) -> KafkaSecurity:
    cafile, certfile, keyfile = (
        settings.kafka_ssl_cafile or None,
        settings.kafka_ssl_certfile or None,
        settings.kafka_ssl_keyfile or None,
    )
    if bool(certfile) != bool(keyfile):
        raise ValueError(
            "KEYLEDGER_KAFKA_SSL_CERTFILE and KEYLEDGER_KAFKA_SSL_KEYFILE go together "
            "(a client certificate and its private key)"
        )
    if cafile:
        try:
            ssl.create_default_context(cafile=cafile)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"KEYLEDGER_KAFKA_SSL_CAFILE={cafile} cannot be used as PEM CA certificates: "
                f"{_why(exc)}"
            ) from None
    secured = replace(security, ssl_cafile=cafile, ssl_certfile=certfile, ssl_keyfile=keyfile)
    if certfile:
        try:
            secured.ssl_context()
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"KEYLEDGER_KAFKA_SSL_CERTFILE={certfile} and KEYLEDGER_KAFKA_SSL_KEYFILE="
                f"{keyfile} cannot be used as a PEM certificate and its key: {_why(exc)}"
            ) from None
    return secured


def _why(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)  # OpenSSL's, as KEY_VALUES_MISMATCH
    if isinstance(exc, ssl.SSLError) and reason:
        return str(reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
