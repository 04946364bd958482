"""The Dockerfile read as Docker reads it (no Docker engine runs here): its instructions and
stages, for the tests that check the image and the one that repeats its build; and the lock
file it installs from."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    text: str  # the rest of the instruction, continuation lines joined

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of `CMD ["a", "b"]`, or None in shell form."""
        body = self.text
        if self.keyword == "HEALTHCHECK":
            body = body.split(" CMD ", 1)[1] if " CMD " in f" {body}" else ""
            body = body.strip()
        if body.startswith("["):
            value = json.loads(body)
            assert isinstance(value, list)
            return [str(v) for v in value]
        return None

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text)


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def instructions(text: str) -> list[Instruction]:
    """Comments dropped, `\\` continuations joined, as Docker's parser does."""
    found: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        found.append(Instruction(keyword.upper(), rest.strip()))
    return found


def stages(path: Path = ROOT / "Dockerfile") -> list[Stage]:
    """Each `FROM ... AS name` with what follows it; `${ARG}` in FROM resolved."""
    args: dict[str, str] = {}
    result: list[Stage] = []
    for instruction in instructions(path.read_text()):
        if instruction.keyword == "ARG" and not result:
            name, _, default = instruction.text.partition("=")
            args[name] = default
            continue
        if instruction.keyword == "FROM":
            words = instruction.text.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(result))
            result.append(Stage(name, base))
            continue
        result[-1].instructions.append(instruction)
    return result


def _pattern(rule: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Go's filepath.Match reads it: `*` and `?` stop at `/`,
    `**` crosses directories."""
    out = ""
    for token in re.split(r"(\*\*/?|\*|\?)", rule):
        if token.startswith("**"):
            out += "(?:.*/)?" if token.endswith("/") else ".*"
        elif token == "*":
            out += "[^/]*"
        elif token == "?":
            out += "[^/]"
        else:
            out += re.escape(token)
    return re.compile(out)


def ignored(path: str, dockerignore: Path = ROOT / ".dockerignore") -> bool:
    """Whether .dockerignore keeps `path` out of the build context: the last rule matching
    the path or a directory above it decides."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for raw in dockerignore.read_text().splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negated = rule.startswith("!")
        pattern = _pattern(rule.lstrip("!").strip("/"))
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            verdict = not negated
    return verdict


def lock_entries(
    path: Path = ROOT / "requirements.lock",
) -> dict[str, tuple[Requirement, list[str], list[str]]]:
    """Each entry of requirements.lock: its requirement, its hashes and what it is there for
    (uv's `# via` lines)."""
    entries: dict[str, tuple[Requirement, list[str], list[str]]] = {}
    current: str | None = None
    in_via = False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if line and not line.startswith((" ", "#")):
            requirement = Requirement(line.rstrip(" \\"))
            current = canonicalize_name(requirement.name)
            entries[current] = (requirement, [], [])
            in_via = False
        elif current and stripped.startswith("--hash="):
            entries[current][1].append(stripped.removeprefix("--hash=").rstrip(" \\"))
        elif current and stripped.startswith("# via"):
            reason = stripped.removeprefix("# via").strip()
            in_via = not reason
            if reason:
                entries[current][2].append(reason)
        elif current and in_via and stripped.startswith("#   "):
            entries[current][2].append(stripped.removeprefix("#").strip())
    return entries
