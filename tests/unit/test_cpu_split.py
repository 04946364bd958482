"""bench/cpu_split.py counts every process of the server's tree, children of children too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cpu_split import process_tree


@pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
    reason="this kernel does not list a task's children in /proc",
)
def test_the_process_tree_holds_children_of_children() -> None:
    sleeper = "import time; time.sleep(30)"
    grandchild = (
        "import subprocess, sys, time; "
        f"subprocess.Popen([sys.executable, '-c', {sleeper!r}]); time.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", grandchild])
    try:
        deadline = time.monotonic() + 10
        while len(tree := process_tree(child.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tree[0] == child.pid
        assert len(tree) == 2
        assert os.getpid() not in tree
    finally:
        for pid in reversed(process_tree(child.pid)):
            os.kill(pid, 9)
        child.wait()
