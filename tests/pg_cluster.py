"""A throwaway PostgreSQL cluster from the local binaries, which a test may stop and restart.

PostgreSQL refuses to run as root, and pytest-postgresql cannot switch users, so a root test
run (CI here) starts the binaries as the `postgres` OS user through `runuser`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_ctl_path() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True):
        return str(candidate)
    return None


class LocalCluster:
    """initdb on a free port; `start()`, `stop()` (fast shutdown) and `remove()`."""

    def __init__(self) -> None:
        pg_ctl = pg_ctl_path()
        if pg_ctl is None:
            raise RuntimeError("no PostgreSQL binaries were found")
        self._bindir = Path(os.path.realpath(pg_ctl)).parent
        self._as_root = os.geteuid() == 0
        self.running = False
        self.datadir = Path(tempfile.mkdtemp(prefix="keyledger-pg-"))
        if self._as_root:
            account = pwd.getpwnam("postgres")
            os.chown(self.datadir, account.pw_uid, account.pw_gid)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bindir / program), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.datadir / "server.log"  # not a pipe: the postmaster would hold it open
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(log), "-o", options, "-w", "start")
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")
            self.running = False

    def remove(self) -> None:
        shutil.rmtree(self.datadir, ignore_errors=True)
