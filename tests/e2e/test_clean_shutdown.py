"""Every long-running command stops within seconds of SIGTERM, whatever the broker or the
database is doing (issue 18).

Each case starts the real command, waits until it is stuck (backing off from a broker that
refuses connections, starting a client against a broker that accepts and never answers,
polling a PostgreSQL that has gone away or stopped answering), sends SIGTERM, and expects the
process gone within `BOUND` seconds: exit status 0, or the conventional one for SIGTERM (killed
by it, or 128 + 15), and no traceback written after the signal. The bound is generous: this
is a behaviour check, not a speed measurement (api/shutdown.py arms a 6 s exit deadline).

The faults are real TCP peers (tests/network_faults.py) in front of, or instead of, the real
PostgreSQL and the real embedded broker.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from adapters.kafka import EmbeddedBroker
from tests.e2e.server import KEYLEDGER, environment, free_port
from tests.network_faults import Forwarder, SilentPeer

BOUND = 10.0
STOPPED_BY_SIGTERM = {0, -signal.SIGTERM, 128 + signal.SIGTERM}


@dataclass
class Command:
    """A running keyledger command, its log, and what the test set up around it."""

    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    database: Forwarder | None = None
    peer: SilentPeer | None = None

    def output(self, start: int = 0) -> str:
        return self.log.read_bytes()[start:].decode(errors="replace")

    def wait_until(self, stuck: Callable[[Command], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not stuck(self):
            if self.process.poll() is not None:
                raise AssertionError(f"exited before {what}: {self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"never {what}: {self.output()}")
            time.sleep(0.1)

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.env['KEYLEDGER_PORT']}/readyz"
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass(frozen=True)
class Case:
    command: tuple[str, ...]
    broker: str  # "unreachable", "silent", "embedded" or "off"
    database: str  # "ok" (SQLite), "cut" or "hangs" (PostgreSQL behind a forwarder)
    started: Callable[[Command], bool]  # running normally, before the database fails
    stuck: Callable[[Command], bool]
    what: str


def log_says(text: str) -> Callable[[Command], bool]:
    return lambda command: text in command.output()


def every_worker_ready(workers: int) -> Callable[[Command], bool]:
    """Ready, and every worker started: one still starting when the database goes would
    fail its start (logged, with its traceback) whatever the stop does."""
    return lambda command: (
        command.ready() and command.output().count("Application startup complete") >= workers
    )


def broker_waited_on(command: Command) -> bool:
    return command.peer is not None and command.peer.connections > 0


def served_and(stuck: Callable[[Command], bool]) -> Callable[[Command], bool]:
    return lambda command: command.ready() and stuck(command)


def not_ready(command: Command) -> bool:
    return not command.ready()


def query_unanswered(command: Command) -> bool:
    return command.database is not None and command.database.unanswered > 0


def anything(command: Command) -> bool:
    return True


CASES = [
    # The reported bug: 30 s after SIGTERM, still in the detector's back-off.
    Case(
        ("detect",),
        "unreachable",
        "ok",
        anything,
        log_says("restarting in 12.8 s"),
        "backing off past the bound",
    ),
    Case(("detect",), "silent", "ok", anything, broker_waited_on, "waiting on the broker"),
    Case(("relay",), "silent", "ok", anything, broker_waited_on, "waiting on the broker"),
    Case(
        ("serve",),
        "silent",
        "ok",
        anything,
        served_and(broker_waited_on),
        "serving, its relay waiting on the broker",
    ),
    Case(
        ("serve", "--workers", "2"),
        "off",
        "cut",
        every_worker_ready(2),
        not_ready,
        "unready with the database gone",
    ),
    Case(
        ("serve",),
        "off",
        "hangs",
        Command.ready,
        query_unanswered,
        "waiting on a database that does not answer",
    ),
    Case(
        ("relay",),
        "embedded",
        "hangs",
        log_says("audit relay active"),
        query_unanswered,
        "waiting on a database that does not answer",
    ),
    Case(
        ("analytics", "keep"),
        "off",
        "cut",
        log_says("keeping the analytics table"),
        log_says("analytics follower is failing"),
        "failing with the database gone",
    ),
]


FAIL_DATABASE: dict[str, Callable[[Forwarder], None]] = {
    "cut": Forwarder.cut,
    "hangs": Forwarder.hang,
}


def through(url: str, port: int) -> str:
    """`url` with its host and port replaced by 127.0.0.1:`port` (the forwarder)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{port}"))


@pytest.fixture
def launch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Case], Command]]:
    """Start a case's command with its faults in place; everything is stopped afterwards."""
    with ExitStack() as stack:

        def start(case: Case) -> Command:
            url = (
                f"sqlite:///{tmp_path}/k.db"
                if case.database == "ok"
                else request.getfixturevalue("postgres_url")
            )
            env = environment(url, tmp_path / "keys", free_port(), KEYLEDGER_LOG_LEVEL="info")
            env["KEYLEDGER_RELAY_BACKOFF_MAX"] = "30"
            if case.command[0] == "analytics":
                env["KEYLEDGER_ANALYTICS_IN_SERVE"] = "false"
            database = peer = None
            if case.database != "ok":
                target = urlsplit(url)
                database = Forwarder((target.hostname or "127.0.0.1", target.port or 5432))
                stack.callback(database.close)
                env["KEYLEDGER_DATABASE_URL"] = through(url, database.port)
            if case.broker == "unreachable":
                env["KEYLEDGER_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{free_port()}"
            elif case.broker == "silent":
                peer = SilentPeer()
                stack.callback(peer.close)
                env["KEYLEDGER_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{peer.port}"
            elif case.broker == "embedded":
                broker = stack.enter_context(EmbeddedBroker("127.0.0.1", free_port()))
                env["KEYLEDGER_KAFKA_BOOTSTRAP"] = broker.bootstrap
            log = tmp_path / "command.log"
            out = stack.enter_context(log.open("wb"))
            process = subprocess.Popen(
                [KEYLEDGER, *case.command], env=env, stdout=out, stderr=subprocess.STDOUT
            )
            stack.callback(_kill, process)
            return Command(process, log, env, database, peer)

        yield start


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=f"{' '.join(case.command)}: {case.what}") for case in CASES]
)
def test_a_stuck_command_stops_within_seconds_of_sigterm(
    case: Case, launch: Callable[[Case], Command]
) -> None:
    command = launch(case)
    command.wait_until(case.started, "started")
    if command.database is not None:
        FAIL_DATABASE[case.database](command.database)
    command.wait_until(case.stuck, case.what)

    before = len(command.log.read_bytes())
    signalled = time.monotonic()
    command.process.send_signal(signal.SIGTERM)
    try:
        command.process.wait(timeout=BOUND)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {BOUND} s after SIGTERM: {command.output()}") from None
    took = time.monotonic() - signalled

    after = command.output(before)
    assert command.process.returncode in STOPPED_BY_SIGTERM, (took, after)
    # A loop already failing before the signal may still report it (once, with its
    # traceback) after it; that is the fault's report, not the stop's.
    from_the_stop = [line for line in after.splitlines() if "is failing, retrying" not in line]
    assert not any("Traceback" in line for line in from_the_stop), after
