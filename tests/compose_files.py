"""compose.yaml's bind-mounted files, made here: deploy/compose/kafka-tls/make-certs.sh run
into a temporary folder, and container paths mapped onto that folder."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KAFKA_TLS = "./deploy/compose/kafka-tls"
MAKE_CERTS = ROOT / "deploy" / "compose" / "kafka-tls" / "make-certs.sh"


def make_kafka_tls(directory: Path) -> Path:
    """The files make-certs.sh makes, in `directory` (as they would be beside the script)."""
    subprocess.run(["sh", str(MAKE_CERTS), str(directory)], check=True, capture_output=True)
    return directory


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (as written in compose.yaml) of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = source
    return mounts


def on_host(service: dict[str, Any], path: str, kafka_tls: Path) -> str:
    """Where `path`, as the service's container sees it, is in the made kafka-tls folder;
    `path` unchanged when no bind mount of that folder holds it."""
    for target, source in bind_mounts(service).items():
        if source.startswith(KAFKA_TLS) and (path == target or path.startswith(target + "/")):
            inside = source[len(KAFKA_TLS) :].lstrip("/")
            return str(kafka_tls / inside / path[len(target) :].lstrip("/"))
    return path
