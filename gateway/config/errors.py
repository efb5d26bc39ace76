"""Config problems as `FILE:LINE:COL: path: message`, all of them, sorted by position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Iterable

# A path through the YAML document: mapping keys and 0-based list indexes.
KeyPath: TypeAlias = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file, at a 1-based line and column."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; `issues` lists every problem, sorted by position."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = sort_issues(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


def sort_issues(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    """Sort by position and drop exact repeats (an alias can report one problem twice)."""
    unique = dict.fromkeys(issues)
    return sorted(unique, key=lambda i: (i.line, i.col, i.path, i.message))


def dotted(path: KeyPath) -> str:
    """`('devices', 2, 'baudrate')` → `devices[2].baudrate`."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else key
    return out
