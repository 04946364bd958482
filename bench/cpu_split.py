"""Where a running server's CPU goes per token, thread by thread (issue 19's profile).

`python -m bench.cpu_split SERVE_PID METRICS_URL -- LOAD_COMMAND...` runs the load command
(wrk, say) against a running `keyledger serve`, then prints the CPU each thread of the
server's process tree spent (from /proc, named by py-spy where it can), PostgreSQL's own
processes, and the tokens issued meanwhile (from the server's /metrics), as microseconds of
CPU per token. Linux only; py-spy (the dev extras) names the Python threads.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _ticks(stat: Path) -> int:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = task / "children"
        if children.exists():
            found += [int(p) for p in children.read_text().split()]
    return found


def process_tree(root: int) -> list[int]:
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += _children(pid)
    return tree


def thread_names(pid: int) -> dict[str, str]:
    """Python thread names by native thread id, from `py-spy dump` (empty without py-spy)."""
    spy = Path(sys.executable).with_name("py-spy")
    try:
        out = subprocess.run(
            [str(spy), "dump", "-p", str(pid), "--nonblocking"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(re.findall(r'^Thread (\d+) \(\w+\): "([^"]*)"', out, re.MULTILINE))


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()[:60]
    except OSError:
        return "?"


def postgres_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def tokens_issued(metrics_url: str) -> float:
    if not metrics_url.startswith(("http://", "https://")):
        raise SystemExit(f"not an http(s) URL: {metrics_url}")
    with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310 (checked)
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("keyledger_tokens_issued_total")
    )


def threads(pids: Iterable[int]) -> dict[tuple[int, str], Path]:
    return {
        (pid, task.name): task / "stat"
        for pid in pids
        for task in Path(f"/proc/{pid}/task").glob("*")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pid", type=int, help="keyledger serve's process id")
    parser.add_argument("metrics", help="its /metrics URL")
    parser.add_argument("load", nargs=argparse.REMAINDER, help="-- and the load command")
    args = parser.parse_args()
    load = args.load[1:] if args.load[:1] == ["--"] else args.load
    tree = process_tree(args.pid)
    names = {pid: thread_names(pid) for pid in tree}
    before = {key: _ticks(stat) for key, stat in threads([*tree, *postgres_pids()]).items()}
    issued = tokens_issued(args.metrics)
    subprocess.run(load, check=True, stdout=subprocess.DEVNULL)
    tokens = tokens_issued(args.metrics) - issued
    # Listed again: threads and processes (PostgreSQL backends, a restarted background
    # process) that started during the load count from zero; those gone are lost.
    ours, theirs = threads(process_tree(args.pid)), threads(postgres_pids())
    if tokens <= 0:
        print("no token was issued during the load", file=sys.stderr)
        return 1

    def micros(keys: Iterable[tuple[int, str]], stats: dict[tuple[int, str], Path]) -> float:
        spent = sum(max(0, _ticks(stats[k]) - before.get(k, 0)) for k in keys)
        return spent / TICKS * 1e6 / tokens

    print(f"{tokens:.0f} tokens issued; CPU microseconds per token:")
    total = 0.0
    for pid, tid in sorted(ours):
        spent = micros([(pid, tid)], ours)
        total += spent
        if spent >= 0.5:
            name = names.get(pid, {}).get(tid, "")
            print(f"{spent:8.1f}  {pid}/{tid} {name:<28} {_command(pid)}")
    postgres = micros(theirs, theirs)
    print(f"{total:8.1f}  the server's process tree")
    print(f"{postgres:8.1f}  PostgreSQL (every postgres process on this machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
