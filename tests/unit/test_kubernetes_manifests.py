"""deploy/kubernetes (a kustomize base) and deploy/overlays/example, rendered by the real
`kubectl kustomize` and checked offline: every object against the Kubernetes JSON schemas
(kubernetes-validate bundles them; strict: unknown fields are errors), the ServiceMonitor
against the fields of prometheus-operator's CRD, and all of it against the code: settings,
commands, routes, the image's user, and the Secrets the example creates.
"""

from __future__ import annotations

import base64
import copy
import re
import shlex
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from adapters.installation import InstallationSecretError, read_secrets
from api.http.ops import health, readiness_probe
from api.http.ops import metrics as metrics_route
from api.settings import CLI_VARIABLES, Settings
from tests.cli_parsing import parse
from tests.dockerfile import ROOT, stages
from tests.kafka_tls import TestCA
from tests.kubernetes_manifests import (
    RENDERINGS,
    api,
    containers,
    deployments,
    environment,
    main_container,
    named,
)

SETTING_NAMES = {f"KEYLEDGER_{f.name.upper()}" for f in fields(Settings)}
# Settings that are secrets: only ever from a Secret, never a literal or a ConfigMap.
SECRET_SETTINGS = {
    "KEYLEDGER_DATABASE_URL",  # holds the database password
    "KEYLEDGER_KEY_ENCRYPTION_KEY",
    "KEYLEDGER_SECRET_PEPPER",
    "KEYLEDGER_KAFKA_SASL_USERNAME",
    "KEYLEDGER_KAFKA_SASL_PASSWORD",
}
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
OBJECTS = [(name, doc) for name, docs in RENDERINGS.items() for doc in docs]


# The fields of prometheus-operator's ServiceMonitor (monitoring.coreos.com/v1) these manifests
# may use, with the CRD's own types and patterns (CRD of prometheus-operator v0.93.0,
# example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml); anything else
# is refused, so a misspelt field fails here rather than being dropped by the API server.
DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["endpoints", "selector"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                            "honorLabels": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}


# prometheus-operator's PodMonitor (the same CRD release, monitoring.coreos.com_podmonitors.yaml):
# the relay and the detector have no Service, so their pods are scraped directly.
POD_MONITOR_SCHEMA: dict[str, Any] = {
    **SERVICE_MONITOR_SCHEMA,
    "properties": {
        **SERVICE_MONITOR_SCHEMA["properties"],
        "kind": {"const": "PodMonitor"},
        "spec": {
            "type": "object",
            "required": ["podMetricsEndpoints", "selector"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["key", "operator"],
                                "additionalProperties": False,
                                "properties": {
                                    "key": {"type": "string"},
                                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                                    "values": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
                "podMetricsEndpoints": SERVICE_MONITOR_SCHEMA["properties"]["spec"]["properties"][
                    "endpoints"
                ],
            },
        },
    },
}
MONITOR_SCHEMAS = {"ServiceMonitor": SERVICE_MONITOR_SCHEMA, "PodMonitor": POD_MONITOR_SCHEMA}


def validate(doc: dict[str, Any], version: str) -> None:
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        jsonschema.validate(doc, MONITOR_SCHEMAS[doc["kind"]])
    else:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_base_runs_the_api_relay_and_detector_with_a_service_budget_and_monitor() -> None:
    docs = RENDERINGS["base"]
    kinds = sorted((d["kind"], d["metadata"]["name"].rsplit("-", 1)[0]) for d in docs)
    assert sorted(deployments(docs)) == ["keyledger-api", "keyledger-detector", "keyledger-relay"]
    assert {k for k, _ in kinds} == {
        "ServiceAccount",
        "ConfigMap",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PodMonitor",
    }
    assert not [d for d in docs if d["kind"] == "Secret"]  # the base holds no secret values


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    ("rendering", "doc"),
    OBJECTS,
    ids=[f"{r}-{d['kind']}-{d['metadata']['name']}" for r, d in OBJECTS],
)
def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(
    rendering: str, doc: dict[str, Any], version: str
) -> None:
    validate(doc, version)


def test_the_schemas_refuse_a_misspelt_field() -> None:
    """The validation above is strict: a field the API server would drop is an error."""
    deployment = copy.deepcopy(api(RENDERINGS["base"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, KUBERNETES_VERSIONS[-1])
    monitor = copy.deepcopy(named(RENDERINGS["base"], "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor, KUBERNETES_VERSIONS[-1])


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_every_keyledger_command_parses_with_the_real_cli(rendering: str) -> None:
    commands = {
        name: main_container(d)["command"] for name, d in deployments(RENDERINGS[rendering]).items()
    }
    assert {name: tuple(c[:2]) for name, c in commands.items()} == {
        "keyledger-api": ("keyledger", "serve"),
        "keyledger-relay": ("keyledger", "relay"),
        "keyledger-detector": ("keyledger", "detect"),
    }
    for command in commands.values():
        parse(command[1:])


def mounted_files(
    deployment: dict[str, Any], container: dict[str, Any], into: Path
) -> dict[str, Path]:
    """Each file a container sees in a mounted Secret, made under `into` (a CA certificate
    stands in for every one): its path in the container and here."""
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
    files: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if not secret:
            continue
        ca = TestCA(into / mount["name"])
        for item in secret["items"]:
            files[f"{mount['mountPath']}/{item['path']}"] = ca.cafile
    return files


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_every_variable_is_a_setting_and_every_value_is_accepted(
    rendering: str, tmp_path: Path
) -> None:
    docs = RENDERINGS[rendering]
    for deployment in deployments(docs).values():
        for container in containers([deployment]):
            variables = environment(docs, container)
            assert set(variables) <= SETTING_NAMES | CLI_VARIABLES, container["name"]
            files = mounted_files(deployment, container, tmp_path / container["name"])
            values = {k: str(files.get(v, v)) for k, v in variables.items() if isinstance(v, str)}
            for name in ("KEYLEDGER_KAFKA_SSL_CAFILE", "KEYLEDGER_KAFKA_SSL_CERTFILE"):
                assert variables.get(name) in (None, *files), f"{name} is in no mounted Secret"
            stand_ins = {  # what the Secrets hold, shaped as keyledger accepts it
                k: base64.b64encode(bytes(32)).decode()
                if k.endswith("ENCRYPTION_KEY")
                else "x" * 40
                for k, v in variables.items()
                if not isinstance(v, str) and k != "KEYLEDGER_DATABASE_URL"
            }
            Settings.from_env({**values, **stand_ins})


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_secret_settings_come_only_from_secret_references(rendering: str) -> None:
    docs = RENDERINGS[rendering]
    for config in (d for d in docs if d["kind"] == "ConfigMap"):
        assert not set(config["data"]) & SECRET_SETTINGS
    for deployment in deployments(docs).values():
        variables = environment(docs, main_container(deployment))
        for name in SECRET_SETTINGS:
            assert set(variables[name]) == {"secretKeyRef"}, (deployment["metadata"]["name"], name)
        for container in containers([deployment]):
            for variable in container.get("env", []):
                if "value" in variable:
                    assert variable["name"] not in SECRET_SETTINGS


def test_every_secret_and_config_map_the_example_references_exists_with_its_keys() -> None:
    docs = RENDERINGS["example"]
    secrets = {d["metadata"]["name"]: set(d["data"]) for d in docs if d["kind"] == "Secret"}
    config_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    referenced = 0
    for deployment in deployments(docs).values():
        pod = deployment["spec"]["template"]["spec"]
        for container in containers([deployment]):
            for variable in container.get("env", []):
                if ref := variable.get("valueFrom", {}).get("secretKeyRef"):
                    assert ref["key"] in secrets[ref["name"]], ref
                    referenced += 1
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps
        for volume in pod.get("volumes", []):
            if secret := volume.get("secret"):
                assert {i["key"] for i in secret["items"]} <= secrets[secret["secretName"]]
                referenced += 1
    assert referenced >= 3 * len(SECRET_SETTINGS)


def test_the_example_secrets_are_placeholders_keyledger_refuses_to_start_with(
    tmp_path: Path,
) -> None:
    (values,) = [
        {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
        for d in RENDERINGS["example"]
        if d["kind"] == "Secret" and "key-encryption-key" in d["data"]
    ]
    assert all("CHANGE-ME" in v for k, v in values.items() if k != "kafka-sasl-username")
    with pytest.raises(InstallationSecretError, match="KEYLEDGER_KEY_ENCRYPTION_KEY"):
        read_secrets(tmp_path, values["key-encryption-key"], "p" * 40, create=False)
    kek = base64.b64encode(bytes(32)).decode()
    with pytest.raises(InstallationSecretError, match="KEYLEDGER_SECRET_PEPPER"):
        read_secrets(tmp_path, kek, values["secret-pepper"], create=False)


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_probes_ports_and_the_scrape_path_are_the_servers_routes(rendering: str) -> None:
    docs = RENDERINGS[rendering]
    container = main_container(api(docs))
    (port,) = container["ports"]
    served_on = int(parse(container["command"][1:]).params["port"] or Settings().port)
    assert port["containerPort"] == served_on
    probes = {k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe")} | {
        "readinessProbe": container["readinessProbe"]["httpGet"]
    }
    assert probes["readinessProbe"]["path"] in health.readyz.paths
    assert probes["livenessProbe"]["path"] in health.healthz.paths
    assert probes["startupProbe"]["path"] in health.healthz.paths
    assert all(p["port"] == port["name"] for p in probes.values())
    service = named(docs, "Service", "keyledger-api")
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    assert (
        service["spec"]["selector"].items()
        <= api(docs)["spec"]["template"]["metadata"]["labels"].items()
    )
    monitor = named(docs, "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service_port["name"]
    assert endpoint["path"] in metrics_route.metrics.paths


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_the_api_runs_replicas_behind_a_disruption_budget_and_leaves_the_relay_to_its_own(
    rendering: str,
) -> None:
    docs = RENDERINGS[rendering]
    deployment = api(docs)
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 2
    budget = named(docs, "PodDisruptionBudget", "keyledger-api")
    assert 1 <= budget["spec"]["minAvailable"] < replicas
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    variables = environment(docs, main_container(deployment))
    assert variables["KEYLEDGER_RELAY_IN_SERVE"] == "false"
    workers = int(variables.get("KEYLEDGER_WORKERS", "1"))
    assert int(variables["KEYLEDGER_QUOTA_PROCESSES"]) == workers * replicas


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_every_container_runs_unprivileged_on_a_read_only_root_with_bounded_resources(
    rendering: str,
) -> None:
    user = stages()[-1].last("USER")
    assert user is not None
    uid = int(user.text.split(":")[0])
    for deployment in deployments(RENDERINGS[rendering]).values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        writable = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in containers([deployment]):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if container in pod["containers"]:  # tempfile's directory: metrics files
                assert mounts["/tmp"] in writable


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_the_relay_and_detector_wait_for_the_api_service_to_be_ready(rendering: str) -> None:
    docs = RENDERINGS[rendering]
    service = named(docs, "Service", "keyledger-api")
    (service_port,) = service["spec"]["ports"]
    for name in ("keyledger-relay", "keyledger-detector"):
        (wait,) = deployments(docs)[name]["spec"]["template"]["spec"]["initContainers"]
        assert f"python -m {readiness_probe.__name__}" in shlex.join(wait["command"])
        variables = environment(docs, wait)
        url = readiness_probe.readiness_url(variables)
        assert url == f"http://{service['metadata']['name']}:{service_port['port']}/readyz"


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_every_container_runs_the_image_at_the_projects_version(rendering: str) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    images = {c["image"] for c in containers(RENDERINGS[rendering])}
    assert len(images) == 1
    (image,) = images
    assert re.fullmatch(rf"([\w.-]+/)*keyledger:{re.escape(version)}", image), image


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_the_relay_and_detector_serve_metrics_on_the_port_their_pod_monitor_scrapes(
    rendering: str,
) -> None:
    docs = RENDERINGS[rendering]
    monitor = named(docs, "PodMonitor")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] in metrics_route.metrics.paths
    selected = set(monitor["spec"]["selector"]["matchExpressions"][0]["values"])
    for name in ("keyledger-relay", "keyledger-detector"):
        deployment = deployments(docs)[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] in selected
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        container = main_container(deployment)
        (port,) = container["ports"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert (port["name"], port["containerPort"]) == (
            endpoint["port"],
            int(env["KEYLEDGER_METRICS_PORT"]),
        )
        assert env["KEYLEDGER_METRICS_HOST"] == "0.0.0.0"
        assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
