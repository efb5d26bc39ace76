"""Config value types that carry units: durations (`250ms`, `5s`, `15m`, `1h`) and sizes.

Values are parsed from the YAML source text and checked against a range; anything
malformed or out of range is an error with a message a technician can act on, never
silently clamped. Inside the daemon a duration is a float of seconds and a size an int of
bytes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_FULL = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")

# Sizes: KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024 (contract.md).
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMG]i?B|B)", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Parse `250ms`, `5s`, `15m`, `1h`, `1d` or a combination such as `1h30m` into seconds."""
    compact = text.strip().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", compact):
        raise ValueError(
            f"{text!r} has no unit: write e.g. '{compact}s', '{compact}ms' or '{compact}m'"
        )
    if not _DURATION_FULL.fullmatch(compact):
        raise ValueError(
            f"{text!r} is not a duration: write a number with a unit, "
            "e.g. '250ms', '5s', '15m', '1h' or '1d'"
        )
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(compact))


def format_duration(seconds: float) -> str:
    """Render seconds in the largest unit that represents them exactly (`90s` → `90s`)."""
    if seconds == 0:
        return "0s"
    for unit in ("d", "h", "m", "s"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    return f"{seconds:g}s"


def parse_size(text: str) -> int:
    """Parse `64MB`, `1GiB`, `500KB` into bytes."""
    m = _SIZE.fullmatch(text.strip())
    if re.fullmatch(r"\d+(?:\.\d+)?", text.strip()):
        raise ValueError(
            f"{text!r} has no unit: write e.g. '{text.strip()}MB' or '{text.strip()}KB'"
        )
    if not m:
        raise ValueError(
            f"{text!r} is not a size: write a number with a unit, e.g. '500KB', '64MB' or '1GiB' "
            "(KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024)"
        )
    number, unit = m.groups()
    return int(float(number) * _SIZE_UNITS[unit.upper()])


def format_size(n: int) -> str:
    """Render bytes as the largest exact unit (`64000000` → `64MB`)."""
    for unit in ("GB", "GiB", "MB", "MiB", "KB", "KiB"):
        size = _SIZE_UNITS[unit.upper()]
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def _to_duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected a duration such as '5s' or '15m'")  # noqa: TRY004 - pydantic turns only ValueError into a config error
    if isinstance(value, int | float):
        # A bare number is ambiguous (seconds? minutes?): demand a unit, say which.
        raise ValueError(f"{value!r} has no unit: write e.g. '{value}s' or '{value}ms'")  # noqa: TRY004
    return parse_duration(value)


def _to_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("expected a size such as '64MB'")  # noqa: TRY004 - see above
    if isinstance(value, int):
        raise ValueError(f"{value!r} has no unit: write e.g. '{value}MB' or '{value}KB'")  # noqa: TRY004
    return parse_size(value)


def duration(min: str | None = None, max: str | None = None) -> Any:  # noqa: A002
    """A duration type accepting values in [min, max] (both inclusive, both optional)."""
    lo = parse_duration(min) if min else None
    hi = parse_duration(max) if max else None

    def check(seconds: float) -> float:
        if lo is not None and seconds < lo:
            raise ValueError(f"{format_duration(seconds)} is too short: the minimum is {min}")
        if hi is not None and seconds > hi:
            raise ValueError(f"{format_duration(seconds)} is too long: the maximum is {max}")
        return seconds

    schema: dict[str, Any] = {
        "type": "string",
        "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d)\s*)+$",
        "description": "A duration: a number and a unit (ms, s, m, h, d), e.g. '5s'.",
    }
    return Annotated[
        float,
        BeforeValidator(_to_duration),
        AfterValidator(check),
        WithJsonSchema(schema),
    ]


def size(min: str | None = None, max: str | None = None) -> Any:  # noqa: A002
    """A byte-size type accepting values in [min, max] (both inclusive, both optional)."""
    lo = parse_size(min) if min else None
    hi = parse_size(max) if max else None

    def check(n: int) -> int:
        if lo is not None and n < lo:
            raise ValueError(f"{format_size(n)} is too small: the minimum is {min}")
        if hi is not None and n > hi:
            raise ValueError(f"{format_size(n)} is too large: the maximum is {max}")
        return n

    schema: dict[str, Any] = {
        "type": "string",
        "pattern": r"^\s*\d+(\.\d+)?\s*([KMGkmg]i?[Bb]|[Bb])\s*$",
        "description": "A size: a number and a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. '64MB'.",
    }
    return Annotated[int, BeforeValidator(_to_size), AfterValidator(check), WithJsonSchema(schema)]
