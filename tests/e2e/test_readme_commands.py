"""Every ```sh block of README.md, run as written, in document order, in one bash session.

A reader runs `make run` in one terminal and the README's blocks in a second one, in the same
folder: state (`$ADMIN_ID`, `$CLIENT_ID`, `$H`, ...) flows from block to block. This test does
the same in a temporary folder laid out like the repository's root (`.venv` is a symlink to
the real one; `var/` is where `make run`'s server keeps its SQLite store and keys), with a
`keyledger serve` started there as `make run` starts it (defaults: SQLite under `var/`, the
embedded broker), on free ports: `http://127.0.0.1:8000` and `127.0.0.1:9092` in the blocks
become that server's and that broker's addresses, and nothing else changes.

Each block must exit 0 under `set -euo pipefail`, and every HTTP answer `curl` gets must be
below 400 unless EXPECTED_ERRORS names the block and the status.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from joserfc.jwk import ECKey

from tests.e2e.server import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV = Path(sys.executable).parent.parent

# Blocks that do not run here, by the heading they sit under, and why. Reviewed: keep short.
SKIPPED = {
    "The image": "needs a Docker engine; tests/unit/test_image.py checks the Dockerfile and "
    "tests/e2e/test_image_install.py runs its build",
    "With compose.yaml": "needs a Docker engine and builds images; "
    "tests/unit/test_compose.py checks compose.yaml against the CLI and the settings",
    "On Kubernetes": "needs a cluster; tests/unit/test_kubernetes_manifests.py renders and "
    "validates deploy/kubernetes",
}
# Blocks that need a program this machine may lack: skipped, with the reason, only then.
NEEDS = {"kcat"}

# Error answers a block shows on purpose: heading -> the statuses allowed.
EXPECTED_ERRORS = {
    "Anomaly detection": {401},  # the loop of wrong secrets that trips the brute_force rule
}

# The one prelude: the JWK Sets the private_key_jwt examples register (`jwks.json`, then
# `new-jwks.json`) with their private keys beside them (`key.pem`, `new-key.pem`), as a
# reader would have them from their own key pairs.
JWKS_FILES = ("", "new-")

SESSION_TIMEOUT = 60  # seconds for all the blocks together


@dataclass
class Block:
    number: int
    line: int
    heading: str
    text: str


def sh_blocks() -> list[Block]:
    blocks: list[Block] = []
    heading = ""
    lines = README.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        if line.startswith("```"):
            fence = line[3:].strip()
            end = index + 1
            while not lines[end].startswith("```"):
                end += 1
            if fence == "sh":
                text = "\n".join(lines[index + 1 : end]) + "\n"
                blocks.append(Block(len(blocks) + 1, index + 1, heading, text))
            index = end
        index += 1
    return blocks


def skip_reason(block: Block) -> str | None:
    if block.heading in SKIPPED:
        return SKIPPED[block.heading]
    for program in sorted(NEEDS):
        used = re.search(rf"(^|[\s;|&(]){program}\s", block.text, re.MULTILINE)
        if used and shutil.which(program) is None:
            return f"{program} is not installed"
    return None


def write_keys(folder: Path) -> None:
    for prefix in JWKS_FILES:
        key = ECKey.generate_key("P-256", private=True)
        (folder / f"{prefix}key.pem").write_bytes(key.as_pem(private=True))
        jwks = {"keys": [key.as_dict(private=False)]}
        (folder / f"{prefix}jwks.json").write_text(json.dumps(jwks))


def session_script(blocks: list[Block], base: str, broker: str, skipped: dict[int, str]) -> str:
    """One bash script: every block in turn, with markers on stdout and stderr, and `curl`
    reporting each answer's status on stderr."""
    parts = [
        "set -euo pipefail",
        # Background jobs a block starts (`keyledger detect &`) end with the session.
        "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
        "curl() { command curl -w '%{stderr}@@http %{http_code} %{method}\\n' \"$@\"; }",
    ]
    for block in blocks:
        marker = f"@@block {block.number}"
        # After a newline: a block's last answer may not end with one (curl prints it as is).
        parts.append(f"printf '\\n{marker} %s\\n' $SECONDS; printf '\\n{marker}\\n' >&2")
        if block.number in skipped:
            continue
        text = block.text.replace("http://127.0.0.1:8000", base)
        parts.append(text.replace("127.0.0.1:9092", broker))
    parts.append("printf '\\n@@end %s\\n' $SECONDS; printf '\\n@@end\\n' >&2")
    return "\n".join(parts) + "\n"


def split(output: str) -> dict[int, str]:
    parts: dict[int, str] = {}
    current = 0
    for line in output.splitlines(keepends=True):
        if line.startswith("@@block "):
            current = int(line.split()[1])
            parts[current] = ""
        elif line.startswith("@@end"):
            current = -1
            parts[current] = ""
        else:
            parts[current] = parts.get(current, "") + line
    return parts


def run_session(script: Path, folder: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """bash runs the script in the folder; a session past SESSION_TIMEOUT is killed (its
    process group: a block's background jobs too) and reported as exit status -9."""
    out, err = script.with_suffix(".out"), script.with_suffix(".err")
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            ["bash", str(script)],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=SESSION_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            returncode = -9
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # nothing a block started outlives it
    return returncode, out.read_text(), err.read_text()


def start_server(folder: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(folder / ".venv" / "bin" / "keyledger"), "serve"],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{env['KEYLEDGER_PORT']}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise AssertionError(f"server not ready: {log.read_text()}")
        time.sleep(0.1)


def test_every_readme_sh_block_runs_as_written(tmp_path: Path) -> None:
    blocks = sh_blocks()
    assert len(blocks) >= 10, "the README lost its command blocks"
    skipped = {b.number: reason for b in blocks if (reason := skip_reason(b)) is not None}
    assert set(SKIPPED) <= {b.heading for b in blocks}, "a SKIPPED heading names no block"

    folder = tmp_path / "keyledger"  # the repository's root, as far as the README knows
    folder.mkdir()
    (folder / ".venv").symlink_to(VENV)
    write_keys(folder)
    port, broker_port = free_port(), free_port()
    # `make run`'s environment: no KEYLEDGER_ variables but the two ports this test moves.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        {
            "KEYLEDGER_PORT": str(port),
            "KEYLEDGER_EMBEDDED_BROKER_PORT": str(broker_port),
            "KEYLEDGER_LOG_LEVEL": "warning",
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        }
    )
    base, broker = f"http://127.0.0.1:{port}", f"127.0.0.1:{broker_port}"
    script = session_script(blocks, base, broker, skipped)
    (tmp_path / "session.sh").write_text(script)

    server = start_server(folder, env, tmp_path / "serve.log")
    started = time.monotonic()
    try:
        returncode, out, err = run_session(tmp_path / "session.sh", folder, env)
    finally:
        stop(server)
    elapsed = time.monotonic() - started

    stdout, stderr = split(out), split(err)
    ran = [n for n in stdout if n > 0]
    last = ran[-1] if ran else 0
    if returncode != 0 or -1 not in stdout:
        block = blocks[last - 1]
        raise AssertionError(
            f"README block {block.number} (line {block.line}, under {block.heading!r}) failed "
            f"with exit status {returncode}:\n{block.text}\n"
            f"--- stdout\n{stdout.get(last, '')[-4000:]}\n--- stderr\n{stderr.get(last, '')}"
        )
    answers = {
        b.number: [
            (int(status), method)
            for status, method in re.findall(
                r"^@@http (\d+) (\w+)$", stderr.get(b.number, ""), re.M
            )
        ]
        for b in blocks
    }
    failures = []
    for block in blocks:
        allowed = EXPECTED_ERRORS.get(block.heading, set())
        bad = [a for a in answers[block.number] if a[0] >= 400 and a[0] not in allowed]
        if bad:
            failures.append(
                f"block {block.number} (line {block.line}, {block.heading!r}): HTTP {bad}\n"
                f"{stdout.get(block.number, '')[-4000:]}\n{stderr.get(block.number, '')}"
            )
    assert failures == [], "\n".join(failures)

    # A few outputs a reader would look at.
    def under(heading: str) -> Block:
        return next(b for b in blocks if b.heading == heading)

    five = under("Five minutes")
    assert '"access_token"' in stdout[five.number]
    admin = under("Admin API")
    assert (200, "PATCH") in answers[admin.number]  # the If-Match version was the client's
    assert '"token_ttl":900' in stdout[admin.number]
    if under("Anomaly detection").number not in skipped:
        assert "brute_force" in stdout[under("Anomaly detection").number]
    print(f"{len(blocks) - len(skipped)} blocks in {elapsed:.1f} s; skipped: {skipped}")
