"""Tokens/s of this tree beside an earlier commit, in alternating runs on one machine.

`python -m bench.token_ab --before HEAD~1 --rounds 3`: checks the commit out into a
temporary worktree, then runs the durable token benchmark (`bench.token_bench`'s variant:
`serve --workers 2` on PostgreSQL with relay and analytics, wrk) for the commit and for this
tree (or `--after COMMIT`, checked out the same way, so the tree can change meanwhile) in
turn, `--rounds` times each, every run on a fresh database; prints each run and the ratio of
the medians. A checked-out commit's server runs from its worktree (first on PYTHONPATH); all
use this tree's virtualenv, so a dependency change between them shows.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import arguments, fresh_database
from bench.token_bench import Result, bench_variant

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--before", default="HEAD~1", help="the commit to compare with")
    parser.add_argument("--after", help="the commit to measure (default: this tree)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[Result]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory() as tmp:
        worktrees = {"before": args.before, "now": args.after}
        paths: dict[str, dict[str, str]] = {"before": {}, "now": {}}
        try:
            for label, commit in worktrees.items():
                if commit is not None:
                    worktree = Path(tmp) / label
                    subprocess.run(
                        [
                            "git",
                            "-C",
                            str(ROOT),
                            "worktree",
                            "add",
                            "--detach",
                            str(worktree),
                            commit,
                        ],
                        check=True,
                        capture_output=True,
                    )
                    paths[label] = {"PYTHONPATH": str(worktree)}
            for round_ in range(args.rounds):
                for label, extra in paths.items():
                    with fresh_database(args.pg) as dsn:
                        work = Path(tmp) / f"{label}-{round_}"
                        work.mkdir()
                        result = bench_variant(label, dsn, work, args, **extra)
                    runs[label].append(result)
                    print(
                        f"{label:<7} round {round_ + 1}: {result.rps:>7.0f} tokens/s, "
                        f"p99 {result.p99_ms:.1f} ms, errors {result.errors}",
                        flush=True,
                    )
        finally:
            for extra in paths.values():
                if extra:
                    subprocess.run(
                        [
                            "git",
                            "-C",
                            str(ROOT),
                            "worktree",
                            "remove",
                            "--force",
                            extra["PYTHONPATH"],
                        ],
                        check=False,
                        capture_output=True,
                    )
    before = statistics.median(r.rps for r in runs["before"])
    now = statistics.median(r.rps for r in runs["now"])
    print(
        f"\nmedian tokens/s: before ({args.before}) {before:.0f}, "
        f"now ({args.after or 'this tree'}) {now:.0f}"
    )
    print(f"now / before = {now / before:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
