"""Run the programs under examples/ the way their READMEs say, against a live keyledger."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import httpx

from adapters.event_store import Ledger
from domain.token import IssuedToken
from tests.e2e.server import stop

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VENV_BIN = str(Path(sys.executable).parent)


def readme_block(folder: str, heading: str) -> str:
    """The first ```sh block under `## heading` in examples/<folder>/README.md."""
    text = (EXAMPLES / folder / "README.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, f"no sh block under {heading!r} in {folder}"
    return match.group(1)


def run_setup(folder: str, env: dict[str, str]) -> dict[str, str]:
    """Run the README's "Set up" block verbatim in bash (with `keyledger` on the PATH) and
    return the variables it exported."""
    script = "set -euo pipefail\n" + readme_block(folder, "Set up") + "\nenv -0\n"
    done = subprocess.run(
        ["bash", "-c", script],
        env={**env, "PATH": f"{VENV_BIN}:{env.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    exported = dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item and item)
    return {k: v for k, v in exported.items() if env.get(k) != v}


@contextmanager
def program(
    folder: str,
    *args: str,
    env: dict[str, str],
    log: Path,
    ready_url: str | None = None,
    python: bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """`python <args>` (or, with `python=False`, the command `args`) running in
    examples/<folder>; stopped (SIGTERM) afterwards. With `ready_url`, waits until that URL
    answers at all."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args] if python else list(args),
            cwd=EXAMPLES / folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            if ready_url is not None:
                wait_for_http(ready_url, proc, log)
            yield proc
        finally:
            stop(proc)


def wait_for_http(url: str, proc: subprocess.Popen[bytes], log: Path, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited: {log.read_text()}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} never answered: {log.read_text()}") from None
            time.sleep(0.1)


def tokens_issued(database_url: str, client_id: str) -> int:
    """How many `Issued` events the event store holds for the client (the server's truth,
    not the example's own account)."""
    ledger = Ledger(database_url, pool_size=1)
    try:
        count, after = 0, 0
        while batch := ledger.read(after, 1000):
            for notification in batch:
                event = ledger.mapper.to_domain_event(notification)
                if isinstance(event, IssuedToken.Issued) and event.client_id == client_id:
                    count += 1
            after = batch[-1].id
        return count
    finally:
        ledger.close()


def load_example(folder: str, module: str) -> ModuleType:
    """Import examples/<folder>/<module>.py (the folders are not packages)."""
    spec = importlib.util.spec_from_file_location(module, EXAMPLES / folder / f"{module}.py")
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    folder_path = str(EXAMPLES / folder)
    sys.path.insert(0, folder_path)  # as `python <module>.py` has it: siblings import
    try:
        spec.loader.exec_module(loaded)
    finally:
        sys.path.remove(folder_path)
    return loaded
