"""TLS for `keyledger serve`, checked when the settings are read: a certificate without its
key, a file that cannot be read or is not PEM, a key that does not match, or an encrypted key
each stop the start with a message naming the variable, not a traceback from a worker.

Errors are `ValueError`s; `api.settings` turns them into `SettingsError`. File contents are
never quoted.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.settings import Settings

CERT = "KEYLEDGER_TLS_CERT_FILE"
KEY = "KEYLEDGER_TLS_KEY_FILE"
CLIENT_CA = "KEYLEDGER_TLS_CLIENT_CA_FILE"
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate chain and key (PEM files), and the CAs whose client
    certificates it asks for (verified when presented, not required: nothing uses them yet)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None


def server_tls(settings: Settings) -> ServerTls | None:
    """TLS for `serve`, or None for plain HTTP; a `ValueError` naming the variable if unusable."""
    cert, key = settings.tls_cert_file or None, settings.tls_key_file or None
    client_ca = settings.tls_client_ca_file or None
    if cert is None and key is None:
        if client_ca is not None:
            raise ValueError(f"{CLIENT_CA} needs {CERT} and {KEY}: client certificates need TLS")
        return None
    if cert is None or key is None:
        raise ValueError(f"{CERT} and {KEY} go together (the server's certificate and its key)")
    for variable, path in ((CERT, cert), (KEY, key), (CLIENT_CA, client_ca)):
        _check_readable(variable, path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{CERT}={cert} and {KEY}={key} cannot be used as a PEM certificate and its "
            f"private key: {_why(exc)}"
        ) from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"{CLIENT_CA}={client_ca} cannot be used as PEM CA certificates: {_why(exc)}"
            ) from None
    return ServerTls(cert, key, client_ca)


def _check_readable(variable: str, path: str | None) -> None:
    if path is None:
        return
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"{variable}={path} cannot be read: {_why(exc)}") from None


def _no_password() -> str:
    """An encrypted key is refused: OpenSSL would otherwise prompt on the terminal."""
    raise ValueError("the key is encrypted; give an unencrypted key (and protect the file)")


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
