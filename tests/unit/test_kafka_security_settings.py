"""The Kafka TLS and SASL settings: what reaches aiokafka, and every bad combination refused
with an error naming the variable, the password in no repr, message or log line."""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path

import pytest
from aiokafka.protocol.admin import SaslAuthenticateRequest_v0
from cryptography.hazmat.primitives import serialization

from adapters.kafka import KafkaConfig
from api.bootstrap import kafka_config
from api.settings import Settings, SettingsError
from tests.kafka_tls import TestCA

PASSWORD = "s3cret-Kafka-pa55word"
BROKER = "kafka-1.internal:9093"


def from_env(**variables: str) -> Settings:
    env = {"KEYLEDGER_KAFKA_BOOTSTRAP": BROKER}
    env.update({f"KEYLEDGER_KAFKA_{name.upper()}": value for name, value in variables.items()})
    return Settings.from_env(env)


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


def test_plaintext_is_the_default_and_gives_aiokafka_no_tls_and_no_sasl() -> None:
    kwargs = kafka_config(from_env()).client_kwargs()
    assert kwargs["security_protocol"] == "PLAINTEXT"
    assert not {"ssl_context", "sasl_mechanism", "sasl_plain_password"} & set(kwargs)


def test_sasl_ssl_reaches_aiokafka_with_mechanism_user_password_and_a_verifying_context(
    ca: TestCA,
) -> None:
    settings = from_env(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="keyledger",
        sasl_password=PASSWORD,
        ssl_cafile=str(ca.cafile),
    )
    kwargs = kafka_config(settings).client_kwargs()
    assert kwargs["bootstrap_servers"] == BROKER
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "keyledger"
    assert kwargs["sasl_plain_password"] == PASSWORD
    context: ssl.SSLContext = kwargs["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "keyledger test CA"),),)
    ]


def test_sasl_plaintext_with_plain_needs_no_tls_settings() -> None:
    kwargs = kafka_config(
        from_env(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_username="keyledger",
            sasl_password=PASSWORD,
        )
    ).client_kwargs()
    assert (kwargs["security_protocol"], kwargs["sasl_mechanism"]) == ("SASL_PLAINTEXT", "PLAIN")
    assert "ssl_context" not in kwargs


def test_a_client_certificate_and_key_are_loaded_for_mutual_tls(ca: TestCA) -> None:
    client = ca.issue("keyledger-client", client=True)
    settings = from_env(
        security_protocol="SSL",
        ssl_cafile=str(ca.cafile),
        ssl_certfile=str(client.cert),
        ssl_keyfile=str(client.key),
    )
    assert settings.kafka_security.ssl_certfile == str(client.cert)
    assert kafka_config(settings).client_kwargs()["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_turning_the_host_name_check_off_still_checks_the_ca() -> None:
    context = from_env(security_protocol="SSL", ssl_check_hostname="false").kafka_security
    built = context.ssl_context()
    assert not built.check_hostname
    assert built.verify_mode == ssl.CERT_REQUIRED


def test_the_password_can_come_from_a_mounted_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    settings = from_env(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="keyledger",
        sasl_password_file=str(secret),
    )
    assert settings.kafka_security.sasl_password == PASSWORD
    secret.write_text("rotated")  # read again whenever a client is built
    assert kafka_config(settings).client_kwargs()["sasl_plain_password"] == "rotated"


SASL = {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "kl"}


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"security_protocol": "TLS"}, "KEYLEDGER_KAFKA_SECURITY_PROTOCOL must be one of"),
        (
            {**SASL, "sasl_mechanism": ""},
            "SASL_SSL needs KEYLEDGER_KAFKA_SASL_MECHANISM: one of PLAIN, SCRAM-SHA-256",
        ),
        ({**SASL, "sasl_mechanism": "GSSAPI"}, "needs KEYLEDGER_KAFKA_SASL_MECHANISM"),
        ({**SASL, "sasl_username": ""}, "SASL_SSL needs KEYLEDGER_KAFKA_SASL_USERNAME"),
        (SASL, "needs exactly one of KEYLEDGER_KAFKA_SASL_PASSWORD and"),
        (
            {**SASL, "sasl_password": PASSWORD, "sasl_password_file": "/run/secrets/p"},
            "needs exactly one of KEYLEDGER_KAFKA_SASL_PASSWORD and",
        ),
        (
            {**SASL, "sasl_password_file": "/nonexistent/password"},
            "KEYLEDGER_KAFKA_SASL_PASSWORD_FILE=/nonexistent/password cannot be read: no such",
        ),
        (
            {"sasl_mechanism": "PLAIN"},
            "KEYLEDGER_KAFKA_SASL_MECHANISM is set, but KEYLEDGER_KAFKA_SECURITY_PROTOCOL="
            "PLAINTEXT: it needs SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            {"security_protocol": "SSL", "sasl_password": PASSWORD},
            "KEYLEDGER_KAFKA_SASL_PASSWORD is set, but KEYLEDGER_KAFKA_SECURITY_PROTOCOL=SSL",
        ),
        (
            {"ssl_cafile": "/etc/ssl/ca.pem"},
            "KEYLEDGER_KAFKA_SSL_CAFILE is set, but KEYLEDGER_KAFKA_SECURITY_PROTOCOL=PLAINTEXT:"
            " it needs SSL or SASL_SSL",
        ),
        (
            {"ssl_check_hostname": "false"},
            "KEYLEDGER_KAFKA_SSL_CHECK_HOSTNAME=false needs KEYLEDGER_KAFKA_SECURITY_PROTOCOL",
        ),
        ({"ssl_check_hostname": "maybe"}, "KEYLEDGER_KAFKA_SSL_CHECK_HOSTNAME has an invalid"),
        (
            {"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"},
            "KEYLEDGER_KAFKA_SSL_CAFILE=/nonexistent/ca.pem cannot be used as PEM CA "
            "certificates: no such file or directory",
        ),
        (
            {"security_protocol": "SSL", "ssl_certfile": "/etc/kafka/client.pem"},
            "KEYLEDGER_KAFKA_SSL_CERTFILE and KEYLEDGER_KAFKA_SSL_KEYFILE go together",
        ),
    ],
)
def test_a_bad_combination_is_an_error_naming_the_variable(
    variables: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")) as refused:
        from_env(**variables)
    assert PASSWORD not in str(refused.value)


def test_a_ca_file_that_holds_no_certificate_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match=f"KEYLEDGER_KAFKA_SSL_CAFILE={junk} cannot be used"):
        from_env(security_protocol="SSL", ssl_cafile=str(junk))


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "password"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match=f"KEYLEDGER_KAFKA_SASL_PASSWORD_FILE={empty} is empty"):
        from_env(**SASL, sasl_password_file=str(empty))


def test_a_key_that_is_not_the_certificates_is_refused(ca: TestCA) -> None:
    one, other = ca.issue("one", client=True), ca.issue("other", client=True)
    with pytest.raises(SettingsError, match="cannot be used as a PEM certificate and its key"):
        from_env(security_protocol="SSL", ssl_certfile=str(one.cert), ssl_keyfile=str(other.key))


def test_an_encrypted_key_is_refused_at_once_instead_of_prompting(ca: TestCA) -> None:
    client = ca.issue("client", client=True)
    key = serialization.load_pem_private_key(client.key.read_bytes(), None)
    client.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(SettingsError, match="the TLS private key is encrypted"):
        from_env(
            security_protocol="SSL", ssl_certfile=str(client.cert), ssl_keyfile=str(client.key)
        )


def test_the_embedded_broker_cannot_be_reached_with_tls_or_sasl() -> None:
    with pytest.raises(SettingsError, match="needs KEYLEDGER_KAFKA_BOOTSTRAP: the embedded"):
        Settings.from_env({"KEYLEDGER_KAFKA_SECURITY_PROTOCOL": "SSL"})


def test_no_repr_shows_the_password_nor_the_installation_secrets() -> None:
    settings = Settings(
        kafka_bootstrap=BROKER,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="keyledger",
        kafka_sasl_password=PASSWORD,
        secret_pepper="pepper-" + PASSWORD,
        key_encryption_key="kek-" + PASSWORD,
    )
    config = kafka_config(settings)
    for shown in (repr(settings), repr(config), repr(config.security), str(config)):
        assert PASSWORD not in shown
    assert "keyledger" in repr(config.security)  # the user is no secret
    assert str(config.security) == "SASL_SSL, PLAIN as keyledger"


def test_aiokafkas_debug_lines_of_sasl_exchanges_never_reach_a_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    KafkaConfig(BROKER).client_kwargs()  # building any client installs the filter
    plain = SaslAuthenticateRequest_v0(f"\x00keyledger\x00{PASSWORD}".encode())
    conn_log = logging.getLogger("aiokafka.conn")
    conn_log.debug("Request to %s:%d %d: %s", "kafka-1.internal", 9093, 7, plain)
    conn_log.debug("Request to %s:%d %d: %s", "kafka-1.internal", 9093, 8, "MetadataRequest")
    assert PASSWORD not in caplog.text
    assert "MetadataRequest" in caplog.text  # other lines still pass


def test_every_kafka_client_is_built_in_adapters_kafka_where_it_gets_the_security() -> None:
    root = Path(__file__).resolve().parents[2]
    built = re.compile(r"\bAIOKafka(Producer|Consumer|AdminClient)\(")
    builders = {
        str(path.relative_to(root))
        for package in ("domain", "adapters", "projections", "api")
        for path in (root / package).rglob("*.py")
        if built.search(path.read_text())
    }
    assert builders == {"adapters/kafka.py"}
    source = (root / "adapters" / "kafka.py").read_text()
    assert len(built.findall(source)) == source.count("**config.client_kwargs()")
