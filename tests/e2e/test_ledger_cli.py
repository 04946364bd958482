"""The ledger from the command line: an admin keeps checkpoints and gets proofs from a real
server; an auditor with read access to the store and the public key only verifies it."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
from pathlib import Path

from domain.merkle_tree import verify_consistency
from tests.e2e.server import KEYLEDGER, cli, cli_json, environment, free_port, serve


def auditor(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as an auditor runs it: no keyledger variable, no keys directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir(exist_ok=True)
    return subprocess.run(
        [KEYLEDGER, *args], env=env, cwd=elsewhere, capture_output=True, text=True, timeout=60
    )


def test_checkpoints_kept_by_an_admin_prove_and_verify_the_history_and_catch_an_edit(
    tmp_path: Path,
) -> None:
    database = tmp_path / "k.db"
    env = environment(f"sqlite:///{database}", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log"):
        first = cli(env, "ledger", "checkpoint", "--reason", "audit")
        assert first.returncode == 0, first.stderr
        (tmp_path / "first.note").write_text(first.stdout)
        [key] = cli(env, "ledger", "keys", "-q").stdout.split()
        proof = cli(env, "ledger", "prove", "--position", "1")
        assert proof.returncode == 0, proof.stderr
        assert "verified against the checkpoint's root" in proof.stdout

        cli_json(env, "clients", "register", "--name", "billing", "--scope", "a")
        second = cli_json(env, "ledger", "checkpoint")["checkpoint"]
        old_size = int(first.stdout.split("\n")[1])
        answer = cli_json(env, "ledger", "consistency", str(old_size), str(second["size"]))
        old_root = base64.b64decode(first.stdout.split("\n")[2])
        assert verify_consistency(
            old_size,
            second["size"],
            old_root,
            base64.b64decode(second["root"]),
            [base64.b64decode(p) for p in answer["proof"]],
        )

    url = f"sqlite:///{database}"
    kept = str(tmp_path / "first.note")
    verified = auditor(
        tmp_path, "ledger", "verify", "--database-url", url, "--key", key, "--checkpoint", kept
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified: the store matches every checkpoint" in verified.stdout

    with sqlite3.connect(database) as db:
        db.execute("UPDATE stored_events SET state = CAST('{}' AS BLOB) WHERE rowid = 2")
    tampered = auditor(
        tmp_path, "ledger", "verify", "--database-url", url, "--key", key, "--checkpoint", kept
    )
    assert tampered.returncode == 1
    assert "first difference at index 1 (position 2): modified" in tampered.stdout
    assert "NOT VERIFIED" in tampered.stdout
