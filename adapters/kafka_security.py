"""TLS and SASL for every Kafka client keyledger makes (producers, consumers, the admin client).

One frozen value says how to reach the broker securely; `client_kwargs()` turns it into the
aiokafka arguments, so no client is built without it. The password is kept out of the value's
repr and of every error message, and aiokafka's debug lines that carry SASL exchanges (a
PLAIN exchange holds the password) are dropped before any handler sees them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class _Explained(KafkaError):  # type: ignore[misc]
    def __str__(self) -> str:  # aiokafka's prefixes the class name, which logs repeat
        return str(self.args[0]) if self.args else type(self).__name__


class KafkaTlsError(_Explained):
    """The TLS handshake with the broker failed (certificate, host name, client certificate)."""


class KafkaAuthenticationError(_Explained):
    """The broker refused the SASL authentication."""


def _refuse_encrypted_key() -> bytes:
    """A password callback: an encrypted private key fails at once instead of prompting."""
    raise ssl.SSLError("the TLS private key is encrypted; give keyledger an unencrypted key")


@dataclass(frozen=True)
class KafkaSecurity:
    """How to reach the broker: plain, TLS, SASL, or SASL over TLS."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        """The client context: the CA file (else the system's CAs), the optional client
        certificate, and the host-name check unless it was turned off."""
        context: ssl.SSLContext = create_ssl_context(
            cafile=self.ssl_cafile,
            certfile=self.ssl_certfile,
            keyfile=self.ssl_keyfile,
            password=_refuse_encrypted_key if self.ssl_certfile else None,
        )
        context.check_hostname = self.ssl_check_hostname
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """The aiokafka arguments for this security (never logged: they hold the password)."""
        _quiet_sasl_debug_lines()
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs

    def describe(self) -> str:
        """For logs: the protocol, the mechanism and the user, never the password."""
        if self.uses_sasl:
            return f"{self.protocol}, {self.sasl_mechanism} as {self.sasl_username}"
        return self.protocol

    def __str__(self) -> str:
        return self.describe()


async def explained(
    failure: BaseException, bootstrap: str, security: KafkaSecurity
) -> Exception | None:
    """Why a client could not start, said plainly; None when there is nothing better to say.

    aiokafka logs the cause of a failed bootstrap and raises only "Unable to bootstrap"; a
    SCRAM refusal without a server signature even escapes as a bare `KeyError`. One direct
    connection to the first bootstrap address, with the same security, shows the cause: a TLS
    or SASL failure becomes a `KafkaTlsError` or `KafkaAuthenticationError` naming the address
    (and the mechanism and user, never the password).
    """
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    address = f"{host}:{port}"
    if isinstance(failure, KafkaConnectionError) and port.isdigit():
        stage, cause = await _probe(host, int(port), security)
    else:
        stage, cause = "connect", failure
    if cause is None:
        return None
    tls = next((c for c in _chain(cause) if isinstance(c, ssl.SSLError)), None)
    if isinstance(tls, ssl.SSLCertVerificationError):
        return KafkaTlsError(
            f"TLS to the broker at {address} failed: its certificate was not accepted "
            f"({tls.verify_message}); check the CA file and the broker's host name"
        )
    if tls is not None:
        code = getattr(tls, "reason", None)  # OpenSSL's, as TLSV13_ALERT_CERTIFICATE_REQUIRED
        reason = str(code).replace("_", " ").lower() if code else str(tls)
        return KafkaTlsError(f"TLS to the broker at {address} failed: {reason}")
    refusal = _sasl_refusal(cause)
    if security.uses_sasl and (refusal or _closed(cause)):
        return KafkaAuthenticationError(
            f"the broker at {address} refused SASL {security.sasl_mechanism} authentication "
            f"as {security.sasl_username!r} ({refusal or 'it closed the connection'}); "
            "check the mechanism, the user name and the password"
        )
    if _closed(cause) and stage == "connect" and not security.uses_tls:
        return KafkaTlsError(
            f"the broker at {address} closed the connection during the handshake: "
            "does its listener require TLS (SSL or SASL_SSL)?"
        )
    if _closed(cause) and stage == "connect":
        return KafkaTlsError(
            f"the broker at {address} closed the TLS connection before answering: does it "
            "require a client certificate (mutual TLS) signed by a CA it trusts?"
        )
    if _closed(cause) and stage == "request" and not security.uses_sasl:
        return KafkaAuthenticationError(
            f"the broker at {address} closed the connection at the first request: "
            "does its listener require SASL (SASL_PLAINTEXT or SASL_SSL)?"
        )
    return None


async def _probe(host: str, port: int, security: KafkaSecurity) -> tuple[str, BaseException | None]:
    """Where one connection with this security fails ("connect": handshakes, or "request":
    the first metadata request), and with what; the exception is None when it works. It gives
    up after 3 s, so a service asked to stop is not held long."""
    stage, conn = "connect", None
    try:
        async with asyncio.timeout(3):
            conn = await create_conn(host, port, **security.client_kwargs())
            stage = "request"
            await conn.send(MetadataRequest([]))
    except Exception as exc:  # the probe's failure is the answer
        return stage, exc
    finally:
        if conn is not None:
            conn.close()
    return stage, None


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _closed(cause: BaseException) -> bool:
    """The broker accepted the connection, then closed it (a refused one is an OSError)."""
    return isinstance(
        cause, KafkaConnectionError | asyncio.IncompleteReadError | ConnectionResetError
    )


def _sasl_refusal(cause: BaseException) -> str:
    """How the broker refused the SASL exchange; empty when `cause` is no such refusal."""
    if isinstance(cause, SaslAuthenticationFailed | AuthenticationFailedError):
        return str(cause) or type(cause).__name__
    if isinstance(cause, UnsupportedSaslMechanismError | IllegalSaslStateError):
        return f"{type(cause).__name__}: {cause}"
    # aiokafka's SCRAM client: a server-final message that is an error (`e=unknown-user`,
    # `e=invalid-proof`) has no signature `v`, or a wrong one.
    if isinstance(cause, KeyError) and cause.args == ("v",):
        return "the server rejected the credentials"
    if isinstance(cause, ValueError) and "signature" in str(cause):
        return "the server's signature did not match"
    return ""


class _NoSaslExchanges(logging.Filter):
    """aiokafka logs every request and response at debug level; a SASL PLAIN request holds
    the password in the clear, a SCRAM one the proof. Drop those lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(type(a).__name__.startswith("Sasl") for a in args)


_FILTER = _NoSaslExchanges()


def _quiet_sasl_debug_lines() -> None:
    logger = logging.getLogger("aiokafka.conn")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
