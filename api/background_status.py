"""What serve's background process reports to the request workers: its jobs' failures, in a
file every process of one `keyledger serve` can read, so that `/readyz` on any worker names
them, and names the process itself when it stops reporting (down, or stuck).

serve creates the file before starting anything (its path in `KEYLEDGER_BACKGROUND_STATUS`,
which the background process and the workers inherit) and removes it when it stops. The
background process rewrites it every `REPORT_EVERY` seconds, whole (written aside, then
renamed: a reader never sees half of it).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from api.settings import BACKGROUND_STATUS
from projections.follower import Health

STATUS_ENV = BACKGROUND_STATUS
REPORT_EVERY = 1.0  # seconds
SILENT_AFTER = 10.0  # seconds without a report before the process counts as failing
PROCESS = "background process"


@contextlib.contextmanager
def status_file() -> Iterator[Path]:
    """A fresh status file for this serve and the processes it starts, removed afterwards."""
    descriptor, name = tempfile.mkstemp(prefix="keyledger-background-", suffix=".json")
    os.close(descriptor)
    path = Path(name)
    report(path, [])  # the process has SILENT_AFTER seconds from now to report itself
    os.environ[STATUS_ENV] = name
    try:
        yield path
    finally:
        os.environ.pop(STATUS_ENV, None)
        path.unlink(missing_ok=True)


def report(path: Path, healths: Iterable[Health]) -> None:
    """Write the failing jobs among `healths`, and when."""
    failing = {h.name: h.failure for h in healths if h.failure is not None}
    aside = path.with_name(f"{path.name}.{os.getpid()}")
    aside.write_text(json.dumps({"at": time.time(), "failing": failing}))
    os.replace(aside, path)


def reported_path() -> Path | None:
    """The status file of the serve this process belongs to, if it keeps one."""
    name = os.environ.get(STATUS_ENV)
    return Path(name) if name else None


def reported_failures(now: float | None = None) -> dict[str, str]:
    """The background process's failing jobs as it last reported them; the process itself
    when its report is missing, unreadable or older than `SILENT_AFTER` seconds."""
    path = reported_path()
    if path is None:
        return {}
    try:
        status = json.loads(path.read_text())
        at, failing = float(status["at"]), dict(status["failing"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {PROCESS: f"no status report: {type(exc).__name__}"}
    silent = (time.time() if now is None else now) - at
    if silent > SILENT_AFTER:
        return {PROCESS: f"no status report for {silent:.0f} s"}
    return {str(name): str(failure) for name, failure in failing.items()}
