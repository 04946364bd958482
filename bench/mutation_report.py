"""`make mutation`: the share of each rule module's mutants that the fast tests kill.

Reads what `mutmut run` left under `mutants/` (one `.meta` file per mutated module) and
prints, per module of `[tool.mutmut] only_mutate`, killed / total and the survivors. A mutant
the tests time out on counts as killed; one no selected test reaches counts as surviving. A
survivor whose exact change `bench/mutation_equivalents.toml` lists, with why nothing can
observe it, is equivalent: `kill rate` is killed / (total - equivalent), and `--min` applies
to it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

KILLED = {"killed", "timeout", "caught by type check"}
EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.toml")


def modules(pyproject: Path) -> list[str]:
    config = tomllib.loads(pyproject.read_text("utf-8"))["tool"]["mutmut"]
    return list(config["only_mutate"])


def statuses(module: str, root: Path) -> dict[str, str]:
    """Each mutant of `module` and what became of it, or {} when it was never run."""
    meta = root / "mutants" / f"{module}.meta"
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def change(mutant: str, module: str) -> tuple[str, ...]:
    """The lines a mutant removes and adds, each stripped after its `-` or `+`."""
    diff = get_diff_for_mutant(mutant, path=module).splitlines()
    return tuple(
        line[0] + line[1:].strip()
        for line in diff
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


def known_equivalents(path: Path) -> set[tuple[str, tuple[str, ...]]]:
    """(function, change) pairs that no test can tell from the original."""
    entries = tomllib.loads(path.read_text("utf-8"))["equivalent"]
    return {(entry["function"], tuple(lines)) for entry in entries for lines in entry["changes"]}


def is_equivalent(mutant: str, module: str, known: set[tuple[str, tuple[str, ...]]]) -> bool:
    function = mutant.rpartition("__mutmut_")[0]
    return (function, change(mutant, module)) in known


def report(
    root: Path, listing: bool, known: set[tuple[str, tuple[str, ...]]]
) -> Iterable[tuple[str, float]]:
    print(f"{'module':<30} {'killed':>6} {'equiv':>6} {'total':>6} {'raw':>7} {'kill rate':>9}")
    for module in modules(root / "pyproject.toml"):
        found = statuses(module, root)
        survivors = sorted(name for name, status in found.items() if status not in KILLED)
        equivalent = {name for name in survivors if is_equivalent(name, module, known)}
        killed = len(found) - len(survivors)
        raw = 100.0 * killed / len(found) if found else 0.0
        killable = len(found) - len(equivalent)
        rate = 100.0 * killed / killable if killable else 0.0
        print(
            f"{module:<30} {killed:>6} {len(equivalent):>6} {len(found):>6} "
            f"{raw:>6.1f}% {rate:>8.1f}%"
        )
        if listing:
            for name in survivors:
                kind = "equivalent" if name in equivalent else found[name]
                print(f"    {kind:<12} {name}")
        yield module, rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min", type=float, default=0.0, help="fail under this kill rate (%%)")
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants")
    args = parser.parse_args(argv)
    known = known_equivalents(EQUIVALENTS)
    failing = [m for m, rate in report(Path.cwd(), args.survivors, known) if rate < args.min]
    if failing:
        print(f"kill rate under {args.min:.0f}%: {', '.join(failing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
