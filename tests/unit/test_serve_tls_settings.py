"""The TLS settings of `keyledger serve`: certificate and key together, each file readable and
usable, a client CA only with TLS; every refusal names the variable (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from api.settings import Settings, SettingsError
from tests.kafka_tls import Issued, TestCA


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


@pytest.fixture
def server(ca: TestCA) -> Issued:
    return ca.issue("server", hosts=("127.0.0.1",))


def tls(**variables: str | Path) -> Settings:
    return Settings.from_env({f"KEYLEDGER_TLS_{k.upper()}": str(v) for k, v in variables.items()})


def test_without_tls_settings_the_issuer_is_http() -> None:
    settings = Settings.from_env({"KEYLEDGER_PORT": "8443"})
    assert settings.server_tls is None
    assert settings.issuer_url == "http://127.0.0.1:8443"


def test_with_a_certificate_and_key_the_default_issuer_is_https(server: Issued) -> None:
    settings = tls(cert_file=server.cert, key_file=server.key)
    assert settings.server_tls is not None
    assert settings.issuer_url == "https://127.0.0.1:8000"


def test_an_explicit_issuer_is_kept_as_it_is_with_tls(server: Issued) -> None:
    settings = Settings.from_env(
        {
            "KEYLEDGER_ISSUER": "https://auth.example.com",
            "KEYLEDGER_TLS_CERT_FILE": str(server.cert),
            "KEYLEDGER_TLS_KEY_FILE": str(server.key),
        }
    )
    assert settings.issuer_url == "https://auth.example.com"


@pytest.mark.parametrize("given", ["cert_file", "key_file"])
def test_a_certificate_without_its_key_or_a_key_without_its_certificate_is_refused(
    server: Issued, given: str
) -> None:
    path = server.cert if given == "cert_file" else server.key
    with pytest.raises(
        SettingsError, match="KEYLEDGER_TLS_CERT_FILE and KEYLEDGER_TLS_KEY_FILE go together"
    ):
        tls(**{given: path})


def test_a_missing_certificate_file_is_refused_naming_the_variable(
    server: Issued, tmp_path: Path
) -> None:
    with pytest.raises(
        SettingsError, match=r"^KEYLEDGER_TLS_CERT_FILE=\S*absent.pem cannot be read: no such file"
    ):
        tls(cert_file=tmp_path / "absent.pem", key_file=server.key)


def test_a_key_path_that_is_not_a_readable_file_is_refused_naming_the_variable(
    server: Issued, tmp_path: Path
) -> None:
    with pytest.raises(
        SettingsError, match=r"^KEYLEDGER_TLS_KEY_FILE=\S* cannot be read: is a directory"
    ):
        tls(cert_file=server.cert, key_file=tmp_path)


def test_a_file_that_is_not_pem_is_refused(server: Issued, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match="cannot be used as a PEM certificate and its private"):
        tls(cert_file=junk, key_file=server.key)


def test_a_key_that_does_not_match_the_certificate_is_refused(ca: TestCA, server: Issued) -> None:
    other = ca.issue("other", hosts=("127.0.0.1",))
    with pytest.raises(SettingsError, match="key values mismatch"):
        tls(cert_file=server.cert, key_file=other.key)


def test_an_encrypted_key_is_refused_without_prompting_for_a_password(
    server: Issued, tmp_path: Path
) -> None:
    key = serialization.load_pem_private_key(server.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass phrase"),
        )
    )
    with pytest.raises(SettingsError, match=r"KEYLEDGER_TLS_KEY_FILE=.*encrypted"):
        tls(cert_file=server.cert, key_file=encrypted)


def test_a_client_ca_is_accepted_with_tls(ca: TestCA, server: Issued) -> None:
    settings = tls(cert_file=server.cert, key_file=server.key, client_ca_file=ca.cafile)
    assert settings.server_tls is not None
    assert settings.server_tls.client_ca_file == str(ca.cafile)


def test_a_client_ca_without_tls_is_refused(ca: TestCA) -> None:
    with pytest.raises(SettingsError, match="KEYLEDGER_TLS_CLIENT_CA_FILE needs"):
        tls(client_ca_file=ca.cafile)


def test_a_client_ca_file_that_holds_no_certificate_is_refused(
    server: Issued, tmp_path: Path
) -> None:
    junk = tmp_path / "junk-ca.pem"
    junk.write_text("no certificates here\n")
    with pytest.raises(SettingsError, match=r"KEYLEDGER_TLS_CLIENT_CA_FILE=.*PEM CA certificates"):
        tls(cert_file=server.cert, key_file=server.key, client_ca_file=junk)
