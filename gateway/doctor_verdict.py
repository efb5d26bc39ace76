"""One line of `storegw doctor` output: a level, a topic, what was found, and the fix."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Level(enum.StrEnum):
    """How bad a finding is; only FAIL makes `storegw doctor` exit 1."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One finding."""

    level: Level
    topic: str
    message: str
    fix: str = ""

    def line(self) -> str:
        """`FAIL  serial   meter-1: /dev/ttyUSB9 does not exist; fix: ...`."""
        text = f"{self.level.upper():<4}  {self.topic:<8} {self.message}"
        return f"{text}; fix: {self.fix}" if self.fix and self.level is not Level.OK else text
