"""compose.yaml runs Kafka with SASL_SSL: its listeners, ports, certificates and users agree
with each other and with the keyledger services' settings.

No Docker engine runs here, so the files the broker reads are made by the real
deploy/compose/kafka-tls/make-certs.sh (openssl) and checked as the broker and keyledger will
read them: the keystore opens with its password, its certificate chains to the CA keyledger
trusts and names the advertised host, and the SASL users and passwords match.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from api.settings import Settings
from tests.compose_files import bind_mounts, make_kafka_tls, on_host

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
KAFKA: dict[str, str] = {k: str(v) for k, v in SERVICES["kafka"]["environment"].items()}
KEYLEDGER = {name: s for name, s in SERVICES.items() if s.get("command", [""])[0] == "keyledger"}
SECRETS = "/etc/kafka/secrets"  # where the apache/kafka image reads its TLS files


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` as {NAME: (host, port)}."""
    found = {}
    for listener in value.split(","):
        name, address = listener.split("://")
        host, _, port = address.rpartition(":")
        found[name] = (host, int(port))
    return found


PROTOCOLS = dict(
    pair.split(":") for pair in KAFKA["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
)
LISTENING = listeners(KAFKA["KAFKA_LISTENERS"])
ADVERTISED = listeners(KAFKA["KAFKA_ADVERTISED_LISTENERS"])


@pytest.fixture(scope="module")
def kafka_tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_kafka_tls(tmp_path_factory.mktemp("kafka-tls"))


def broker_file(path: str, kafka_tls: Path) -> Path:
    return Path(on_host(SERVICES["kafka"], path, kafka_tls))


def jaas_users(kafka_tls: Path) -> dict[str, str]:
    jaas = (kafka_tls / "broker" / "kafka_server_jaas.conf").read_text()
    return dict(re.findall(r'user_(\w+)="([^"]+)"', jaas))


def keyledger_settings(name: str, kafka_tls: Path) -> Settings:
    service = SERVICES[name]
    values = {k: str(v) for k, v in service["environment"].items()}
    resolved = {k: re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", v) for k, v in values.items()}
    return Settings.from_env({k: on_host(service, v, kafka_tls) for k, v in resolved.items()})


def test_clients_and_the_broker_itself_reach_kafka_only_through_sasl_ssl() -> None:
    assert set(ADVERTISED) == {"SASL_SSL"}
    assert PROTOCOLS["SASL_SSL"] == "SASL_SSL"
    assert KAFKA["KAFKA_INTER_BROKER_LISTENER_NAME"] == "SASL_SSL"
    assert KAFKA["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] in KAFKA[
        "KAFKA_SASL_ENABLED_MECHANISMS"
    ].split(",")
    plaintext = [name for name, protocol in PROTOCOLS.items() if protocol == "PLAINTEXT"]
    assert plaintext == [KAFKA["KAFKA_CONTROLLER_LISTENER_NAMES"]]


def test_the_controller_listener_is_separate_internal_and_never_advertised() -> None:
    controller = KAFKA["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in LISTENING
    assert controller not in ADVERTISED
    node, _, voter = KAFKA["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert node == KAFKA["KAFKA_NODE_ID"]
    assert int(voter.rpartition(":")[2]) == LISTENING[controller][1]
    assert LISTENING[controller][1] != LISTENING["SASL_SSL"][1]
    assert "ports" not in SERVICES["kafka"]  # nothing published on the host


def test_every_listener_port_is_the_advertised_one_and_every_name_has_a_protocol() -> None:
    for name, (_, port) in ADVERTISED.items():
        assert LISTENING[name][1] == port
    assert set(LISTENING) <= set(PROTOCOLS)


def test_the_keystore_opens_and_its_certificate_names_the_advertised_host(
    kafka_tls: Path,
) -> None:
    keystore = broker_file(f"{SECRETS}/{KAFKA['KAFKA_SSL_KEYSTORE_FILENAME']}", kafka_tls)
    password = broker_file(f"{SECRETS}/{KAFKA['KAFKA_SSL_KEYSTORE_CREDENTIALS']}", kafka_tls)
    key_password = broker_file(f"{SECRETS}/{KAFKA['KAFKA_SSL_KEY_CREDENTIALS']}", kafka_tls)
    assert KAFKA["KAFKA_SSL_KEYSTORE_TYPE"] == "PKCS12"
    assert password.read_text() == key_password.read_text()
    key, cert, _ = pkcs12.load_key_and_certificates(keystore.read_bytes(), password.read_bytes())
    assert key is not None
    assert cert is not None
    ca = x509.load_pem_x509_certificate(
        broker_file(KAFKA["KAFKA_SSL_TRUSTSTORE_LOCATION"], kafka_tls).read_bytes()
    )
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ADVERTISED["SASL_SSL"][0] in names.get_values_for_type(x509.DNSName)


def test_the_broker_finds_its_jaas_file_and_its_own_user(kafka_tls: Path) -> None:
    option = KAFKA["KAFKA_OPTS"]
    assert option.startswith("-Djava.security.auth.login.config=")
    jaas = broker_file(option.partition("=")[2], kafka_tls).read_text()
    assert "KafkaServer" in jaas
    assert "PlainLoginModule" in jaas
    own = re.search(r'username="(\w+)"\s+password="([^"]+)"', jaas)
    assert own is not None
    assert jaas_users(kafka_tls)[own[1]] == own[2]


@pytest.mark.parametrize("name", sorted(KEYLEDGER))
def test_keyledger_authenticates_as_a_user_the_broker_knows_and_trusts_its_ca(
    name: str, kafka_tls: Path
) -> None:
    security = keyledger_settings(name, kafka_tls).kafka_security
    assert security.protocol == "SASL_SSL"
    assert security.sasl_mechanism in KAFKA["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")
    assert jaas_users(kafka_tls)[str(security.sasl_username)] == security.sasl_password
    assert security.ssl_check_hostname
    ca = Path(str(security.ssl_cafile)).read_bytes()
    assert ca == broker_file(KAFKA["KAFKA_SSL_TRUSTSTORE_LOCATION"], kafka_tls).read_bytes()
    assert "./deploy/compose/kafka-tls/keyledger" in bind_mounts(SERVICES[name]).values()


def test_the_health_check_speaks_sasl_ssl_to_the_advertised_listener(kafka_tls: Path) -> None:
    check = " ".join(SERVICES["kafka"]["healthcheck"]["test"][1:])
    host, port = ADVERTISED["SASL_SSL"]
    assert f"--bootstrap-server {host}:{port}" in check
    config = re.search(r"--command-config (\S+)", check)
    assert config is not None
    properties = dict(
        line.split("=", 1)
        for line in broker_file(config[1], kafka_tls).read_text().splitlines()
        if "=" in line
    )
    assert properties["security.protocol"] == "SASL_SSL"
    assert properties["sasl.mechanism"] in KAFKA["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")
    user = re.search(r'username="(\w+)" password="([^"]+)"', properties["sasl.jaas.config"])
    assert user is not None
    assert jaas_users(kafka_tls)[user[1]] == user[2]
    assert properties["ssl.truststore.location"] == KAFKA["KAFKA_SSL_TRUSTSTORE_LOCATION"]


def test_kafka_keeps_its_log_in_the_named_volume() -> None:
    assert f"kafkadata:{KAFKA['KAFKA_LOG_DIRS']}" in SERVICES["kafka"]["volumes"]
