"""Telling a process's followers that the log changed in a way they fold (PostgreSQL).

A worker's followers (clients, revocations, signing keys) fold events that are rare beside
tokens, yet each polled the log every `KEYLEDGER_FOLLOW_INTERVAL`: under load, three threads
per worker woke ten times a second to query a log that had grown by nothing but tokens
(3.6 µs of CPU per token per worker, `bench.cpu_split`). The append
function notifies `changes_channel` whenever a commit appends anything but a token's
issuance (`adapters/postgres_recorder.py`); `ChangeListener` listens on one connection and
raises `LogChanges`, on which the followers wait. So a follower turns when told (at most once
per interval) and, whatever it is told, at least every `SAFETY_INTERVAL`; while the listener
is not connected it polls at its interval, as before. The safety turn keeps DESIGN.md's one
second (invariants 3 and 8) even when notices stop coming while the connection looks alive (a
peer gone silently, a server older than the append function's notice, a pooler in
transaction mode): the wait for a change is half of it.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

SAFETY_INTERVAL = 0.5  # seconds: a follower turns at least this often, told or not
RECONNECT_AFTER = (1.0, 30.0)  # seconds before listening again: first, at most (doubling)


class LogChanges:
    """A count of the changes reported, which followers wait to see move; `listening` while a
    listener is connected (only then may a follower wait for it rather than poll)."""

    def __init__(self) -> None:
        self._moved = threading.Condition()
        self.generation = 0
        self.listening = False

    def report(self) -> None:
        with self._moved:
            self.generation += 1
            self._moved.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Until the count is no longer `seen`, or `timeout` seconds."""
        with self._moved:
            self._moved.wait_for(lambda: self.generation != seen, timeout)


def next_turn(
    stop: threading.Event, interval: float, changes: LogChanges | None, seen: int
) -> bool:
    """Wait for a follower's next turn; True once it is stopped. A turn comes `interval`
    after the last at the earliest; with a listener connected, then only once a change after
    `seen` is reported, or `SAFETY_INTERVAL` after the last turn."""
    if stop.wait(interval):
        return True
    if changes is not None and changes.listening:
        changes.wait(seen, max(SAFETY_INTERVAL - interval, 0.0))
    return stop.is_set()


class ChangeListener:
    """One connection listening on the store's changes channel, reporting each notification
    (and each reconnection: what was appended meanwhile was not notified here)."""

    def __init__(
        self, conninfo: str, channel: str, changes: LogChanges, poll: float = 0.25
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self.changes = changes
        self._poll = poll  # how often the listening loop looks at `stop`
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._set_listening(False)

    def _run(self) -> None:
        pause, reported = RECONNECT_AFTER[0], ""
        while not self._stop.is_set():
            try:
                self._listen()
                pause = RECONNECT_AFTER[0]  # it was listening: a new failure starts over
            except Exception as exc:
                failure = f"{type(exc).__name__}: {exc}"
                if failure != reported:  # once per kind of failure, not once per attempt
                    log.warning("not listening for log changes (polling meanwhile): %s", failure)
                    reported = failure
            finally:
                self._set_listening(False)
            self._stop.wait(pause)
            pause = min(pause * 2, RECONNECT_AFTER[1])

    def _listen(self) -> None:
        # A silently dead peer is noticed within about 25 s (the followers poll meanwhile).
        with psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=2,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        ) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._set_listening(True)  # its report is a turn now: for what came before LISTEN
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=self._poll):
                    self.changes.report()
                    if self._stop.is_set():
                        return

    def _set_listening(self, listening: bool) -> None:
        self.changes.listening = listening
        self.changes.report()  # waiting followers re-read it: poll again, or wait
