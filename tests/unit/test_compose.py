"""compose.yaml cannot run here (no Docker engine), so it is checked against the code.

Every keyledger service must run a real `keyledger` command, set only variables the
settings define (with values they accept), and point at the PostgreSQL and Kafka services
as those are configured; every service has a health check.
"""

from __future__ import annotations

import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from api.cli.options import LOCAL
from api.settings import Settings
from tests.cli_parsing import parse
from tests.compose_files import make_kafka_tls, on_host

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
KEYLEDGER = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
SETTING_NAMES = {f"KEYLEDGER_{f.name.upper()}" for f in fields(Settings)}


def env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service.get("environment", {}).items()}


def resolved(value: str) -> str:
    """`${NAME:-default}` as compose resolves it with NAME unset."""
    if value.startswith("${") and ":-" in value:
        return value[value.index(":-") + 2 : -1]
    return value


def test_there_are_postgres_kafka_two_api_replicas_a_relay_and_a_detector() -> None:
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    commands = [tuple(s["command"][:2]) for s in KEYLEDGER.values()]
    assert commands.count(("keyledger", "serve")) == 2
    assert commands.count(("keyledger", "relay")) == 1
    assert commands.count(("keyledger", "detect")) == 1


def test_kafka_runs_as_one_kraft_node() -> None:
    kafka = env(SERVICES["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{kafka['KAFKA_NODE_ID']}@kafka:9093"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_health_check(name: str) -> None:
    assert SERVICES[name]["healthcheck"]["test"]


@pytest.fixture(scope="module")
def kafka_tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/compose/kafka-tls as its make-certs.sh fills it (the CA, the password file)."""
    return make_kafka_tls(tmp_path_factory.mktemp("kafka-tls"))


@pytest.mark.parametrize("name", sorted(KEYLEDGER))
def test_keyledger_services_set_only_settings_the_code_reads(name: str, kafka_tls: Path) -> None:
    variables = env(KEYLEDGER[name])
    assert set(variables) <= SETTING_NAMES
    # values are accepted; the files they name are read where the bind mounts put them
    Settings.from_env(
        {k: on_host(KEYLEDGER[name], resolved(v), kafka_tls) for k, v in variables.items()}
    )


@pytest.mark.parametrize("name", sorted(KEYLEDGER))
def test_keyledger_commands_parse_with_the_real_cli(name: str) -> None:
    command = KEYLEDGER[name]["command"]
    assert command[0] == "keyledger"
    parse(command[1:])
    health = KEYLEDGER[name]["healthcheck"]["test"]
    if health[1] == "keyledger":
        parse(health[2:])


@pytest.mark.parametrize("name", sorted(KEYLEDGER))
def test_health_checks_are_installation_commands_needing_no_admin_credentials(name: str) -> None:
    health = KEYLEDGER[name]["healthcheck"]["test"]
    if health[1] != "keyledger":
        return
    command = parse(health[2:]).command
    assert LOCAL in (command.help or ""), health


@pytest.mark.parametrize("name", sorted(KEYLEDGER))
def test_the_database_url_names_the_postgres_service_as_configured(name: str) -> None:
    url = urlsplit(env(KEYLEDGER[name])["KEYLEDGER_DATABASE_URL"])
    postgres = env(SERVICES["postgres"])
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == postgres["POSTGRES_DB"]


@pytest.mark.parametrize("name", sorted(KEYLEDGER))
def test_the_bootstrap_is_the_brokers_advertised_listener(name: str) -> None:
    kafka, keyledger = env(SERVICES["kafka"]), env(KEYLEDGER[name])
    advertised = dict(
        reversed(listener.split("://"))
        for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    protocols = dict(
        pair.split(":") for pair in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    listener = advertised[keyledger["KEYLEDGER_KAFKA_BOOTSTRAP"]]
    assert protocols[listener] == keyledger["KEYLEDGER_KAFKA_SECURITY_PROTOCOL"]
    assert KEYLEDGER[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert KEYLEDGER[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_api_replicas_share_issuer_keys_and_publish_no_audit_relay_of_their_own() -> None:
    apis = [s for s in KEYLEDGER.values() if s["command"][1] == "serve"]
    assert len({env(s)["KEYLEDGER_ISSUER"] for s in apis}) == 1
    assert len({tuple(s["volumes"]) for s in apis}) == 1
    assert all(env(s)["KEYLEDGER_RELAY_IN_SERVE"] == "false" for s in apis)


def test_published_ports_reach_the_port_each_server_listens_on() -> None:
    for service in KEYLEDGER.values():
        if service["command"][1] != "serve":
            continue
        listening = parse(service["command"][1:]).params["port"] or Settings().port
        for mapping in service["ports"]:
            assert int(mapping.split(":")[-1]) == listening
        health = " ".join(shlex.quote(p) for p in service["healthcheck"]["test"])
        assert f"127.0.0.1:{listening}/readyz" in health


# The image itself (stages, user, lock file, health check): tests/unit/test_image.py.


def test_only_serve_sets_the_installation_up_so_the_others_wait_for_a_healthy_server() -> None:
    servers = {
        n for n, s in KEYLEDGER.items() if shlex.join(s["command"]).startswith("keyledger serve")
    }
    for name, service in KEYLEDGER.items():
        if name in servers:
            continue
        waits_for = {
            dep
            for dep, rule in service["depends_on"].items()
            if rule["condition"] == "service_healthy"
        }
        assert waits_for & servers, f"{name} may start before any installation exists"
