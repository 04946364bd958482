"""deploy/kubernetes and deploy/overlays/example as `kubectl kustomize` renders them, and ways
to find what the tests look at in them (Deployments, containers, a container's variables)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.dockerfile import ROOT

BASE = ROOT / "deploy" / "kubernetes"
EXAMPLE = ROOT / "deploy" / "overlays" / "example"


def render(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


RENDERINGS = {"base": render(BASE), "example": render(EXAMPLE)}


def named(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return found


def deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def containers(docs: list[dict[str, Any]], *, init: bool = True) -> Iterator[dict[str, Any]]:
    for deployment in deployments(docs).values():
        pod = deployment["spec"]["template"]["spec"]
        yield from pod["containers"]
        if init:
            yield from pod.get("initContainers", [])


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def environment(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, Any]:
    """A container's variables: its ConfigMaps' data, then its own `env` (values or refs)."""
    variables: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        variables.update(named(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in container.get("env", []):
        variables[variable["name"]] = variable.get("value", variable.get("valueFrom"))
    return variables


def api(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return deployments(docs)["keyledger-api"]
