"""A TLS-only Kafka listener for tests: a throwaway CA, and Debian's stunnel in front of the
embedded broker, which advertises stunnel's address so every connection goes through TLS."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapters.kafka import EmbeddedBroker, port_open
from tests.conftest import free_port

STUNNEL = shutil.which("stunnel") or "/usr/bin/stunnel"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class TestCA:
    """A CA that lives in one directory and signs server and client certificates."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, directory: Path, name: str = "keyledger test CA") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._cert = (
            self._builder(subject, self._key.public_key(), subject)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cafile = directory / f"{name.replace(' ', '-')}.pem"
        self.cafile.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._name = subject

    def _builder(
        self, subject: x509.Name, key: ec.EllipticCurvePublicKey, issuer: x509.Name
    ) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    def issue(self, name: str, *, hosts: tuple[str, ...] = (), client: bool = False) -> Issued:
        """A certificate (and its unencrypted key) for a server's `hosts` or for a client."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = self._builder(subject, key.public_key(), self._name).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName(_names(hosts)), False)
        cert = builder.sign(self._key, hashes.SHA256())
        issued = Issued(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        issued.key.chmod(0o600)
        return issued


def _names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


@contextmanager
def stunnel(
    directory: Path, server: Issued, upstream: int, port: int, *, client_ca: Path | None = None
) -> Iterator[Path]:
    """stunnel terminating TLS on `port` for the plain `upstream` port; its log's path.

    With `client_ca`, a client certificate signed by that CA is required (mutual TLS).
    """
    mutual = f"verifyChain = yes\nrequireCert = yes\nCAfile = {client_ca}\n" if client_ca else ""
    config = directory / f"stunnel-{port}.conf"
    log = directory / f"stunnel-{port}.log"
    config.write_text(
        "foreground = quiet\n"
        "pid =\n"
        f"output = {log}\n"
        "debug = 5\n"
        "[kafka]\n"
        f"accept = {HOST}:{port}\n"
        f"connect = {HOST}:{upstream}\n"
        f"cert = {server.cert}\n"
        f"key = {server.key}\n" + mutual
    )
    process = subprocess.Popen(
        [STUNNEL, str(config)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open(HOST, port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stunnel did not listen on {port}: {log.read_text()}")
            time.sleep(0.05)
        yield log
    finally:
        process.terminate()
        process.wait(timeout=5)


@dataclass(frozen=True)
class TlsBroker:
    """The embedded broker reachable only through TLS at `bootstrap`."""

    bootstrap: str
    ca: TestCA
    stunnel_log: Path


@contextmanager
def tls_broker(
    directory: Path,
    *,
    hosts: tuple[str, ...] = (HOST, "localhost"),
    advertised_host: str = HOST,
    mutual: bool = False,
    authentication: bool = False,
) -> Iterator[TlsBroker]:
    """A fresh embedded broker behind stunnel, its certificate naming `hosts`; clients reach
    it at `advertised_host` and stunnel's port (the bootstrap and the metadata agree)."""
    ca = TestCA(directory)
    server = ca.issue("broker", hosts=hosts)
    tls_port = free_port()
    broker = EmbeddedBroker(
        HOST, free_port(), advertised=f"{advertised_host}:{tls_port}", authentication=authentication
    )
    with (
        broker,
        stunnel(
            directory, server, broker.port, tls_port, client_ca=ca.cafile if mutual else None
        ) as log,
    ):
        yield TlsBroker(f"{advertised_host}:{tls_port}", ca, log)
