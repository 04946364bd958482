"""Tokens/s of this tree beside an earlier commit, in alternating runs on one machine.

`python -m bench.token_ab --before HEAD~1 --rounds 3`: checks the commit out into a
temporary worktree, then runs the durable token benchmark (`bench.token_bench`'s variant:
`serve --workers 2` on PostgreSQL with relay and analytics, wrk) for the commit and for this
tree in turn, `--rounds` times each, every run on a fresh database; prints each run and the
ratio of the medians. The earlier commit's server runs from its worktree (first on
PYTHONPATH); both use this tree's virtualenv, so a dependency change between them shows.
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
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[Result]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.before],
            check=True,
            capture_output=True,
        )
        try:
            for round_ in range(args.rounds):
                for label, extra in (("before", {"PYTHONPATH": str(worktree)}), ("now", {})):
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
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                check=False,
                capture_output=True,
            )
    before = statistics.median(r.rps for r in runs["before"])
    now = statistics.median(r.rps for r in runs["now"])
    print(f"\nmedian tokens/s: before ({args.before}) {before:.0f}, now {now:.0f}")
    print(f"now / before = {now / before:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
