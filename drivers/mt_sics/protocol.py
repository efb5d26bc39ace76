"""MT-SICS wire protocol, IO-free: command builders, a CR LF line framer and reply decoding.

Everything here follows protocols.md §2.1 (MT-SICS reference manuals). No function in this
module raises on bytes that came from the wire: a line that cannot be decoded becomes a
`Reply` with status `MALFORMED`, so the driver counts it and carries on with the next line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

CRLF = b"\r\n"
MAX_LINE = 256
"""Longest line kept; MT-SICS replies are far shorter, so a longer run is noise (§2.1)."""

# Units a balance may print after a weight, as kg per unit (exact where the unit is defined).
UNIT_KG: dict[str, Decimal] = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "mg": Decimal("0.000001"),
    "ug": Decimal("0.000000001"),
    "t": Decimal(1000),
    "lb": Decimal("0.45359237"),
    "oz": Decimal("0.028349523125"),
    "ozt": Decimal("0.0311034768"),
    "ct": Decimal("0.0002"),
    "GN": Decimal("0.00006479891"),
}


class Command(StrEnum):
    """Commands the gateway sends (MT-SICS level 0 and the level-1 weighing commands, §2.1)."""

    SEND_STABLE = "S"
    SEND_IMMEDIATE = "SI"
    SEND_IMMEDIATE_REPEAT = "SIR"
    SEND_STABLE_REPEAT = "SR"
    ZERO = "Z"
    ZERO_IMMEDIATE = "ZI"
    TARE = "T"
    TARE_IMMEDIATE = "TI"
    TARE_VALUE = "TA"
    TARE_CLEAR = "TAC"
    RESET = "@"
    COMMANDS = "I0"
    LEVEL = "I1"
    BALANCE_DATA = "I2"
    SOFTWARE_VERSION = "I3"
    SERIAL_NUMBER = "I4"
    SOFTWARE_ID = "I5"


class Status(StrEnum):
    """What a reply line says: the status letter, or the whole line for general errors."""

    STABLE = "S"
    DYNAMIC = "D"  # also "done" in the second line of Radwag/Kern `Z A` / `Z D` (§2.1 trap 3)
    DONE = "A"
    NOT_EXECUTABLE = "I"
    LOGICAL = "L"
    OVERLOAD = "+"
    UNDERLOAD = "-"
    SYNTAX_ERROR = "ES"
    TRANSMISSION_ERROR = "ET"
    LOGICAL_ERROR = "EL"
    MALFORMED = "?"


_STATUS_TEXT: dict[Status, str] = {
    Status.NOT_EXECUTABLE: "command not executable (balance busy or not stable in time)",
    Status.LOGICAL: "command not executable (parameter not allowed)",
    Status.OVERLOAD: "overload (above the weighing or zero/tare range)",
    Status.UNDERLOAD: "underload (below the weighing or zero/tare range)",
    Status.SYNTAX_ERROR: "syntax error: the balance does not know this command",
    Status.TRANSMISSION_ERROR: "transmission error (parity or framing: check the serial settings)",
    Status.LOGICAL_ERROR: "logical error: command or parameter not allowed now",
}

_GENERAL_ERRORS = {
    "ES": Status.SYNTAX_ERROR,
    "ET": Status.TRANSMISSION_ERROR,
    "EL": Status.LOGICAL_ERROR,
}
_ID = re.compile(r"[A-Z][A-Z0-9]{0,5}")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_TEXT_PARAM = re.compile(r'"((?:[^"]|"")*)"')


@dataclass(frozen=True, slots=True)
class Reply:
    """One decoded reply line; `weight_kg` is set for weight replies in a known unit."""

    command: str
    status: Status
    raw: bytes
    value: Decimal | None = None
    unit: str | None = None
    weight_kg: float | None = None
    text: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def stable(self) -> bool:
        """True for a stable weight (`S S …`), False for everything else."""
        return self.status is Status.STABLE and self.weight_kg is not None

    @property
    def fault(self) -> str | None:
        """Readable text for an error, overload or undecodable line; None for a normal reply."""
        if self.problem is not None:
            return self.problem
        return _STATUS_TEXT.get(self.status)


def encode(command: Command | str, *params: str | Decimal | int) -> bytes:
    """Build one command line: parameters separated by one space, text quoted, CR LF at the end."""
    parts = [str(command)]
    for param in params:
        if isinstance(param, str):
            # Text parameters go in double quotes; a quote inside is doubled (§2.1).
            parts.append('"' + param.replace('"', '""') + '"')
        else:
            parts.append(str(param))
    line = " ".join(parts)
    if "\r" in line or "\n" in line:
        raise ValueError(f"MT-SICS command must be one line, got {line!r}")
    return line.encode("ascii") + CRLF


def send_stable() -> bytes:
    """`S`: the next stable net weight."""
    return encode(Command.SEND_STABLE)


def send_immediate() -> bytes:
    """`SI`: the current net weight, stable or not."""
    return encode(Command.SEND_IMMEDIATE)


def send_immediate_repeat() -> bytes:
    """`SIR`: stream the weight until cancelled by `@`, `S`, `SI` or `SR`."""
    return encode(Command.SEND_IMMEDIATE_REPEAT)


def send_stable_repeat() -> bytes:
    """`SR`: a stable weight now and after each stable change."""
    return encode(Command.SEND_STABLE_REPEAT)


def zero(immediately: bool = False) -> bytes:
    """`Z` (waits for stability) or `ZI` (zero at once)."""
    return encode(Command.ZERO_IMMEDIATE if immediately else Command.ZERO)


def tare(immediately: bool = False) -> bytes:
    """`T` (waits for stability) or `TI` (tare at once)."""
    return encode(Command.TARE_IMMEDIATE if immediately else Command.TARE)


def tare_value(value: Decimal | None = None, unit: str = "kg") -> bytes:
    """`TA` to query the tare, or `TA <value> <unit>` to preset it."""
    if value is None:
        return encode(Command.TARE_VALUE)
    if unit not in UNIT_KG:
        raise ValueError(f"unknown unit {unit!r}; known: {', '.join(UNIT_KG)}")
    return f"{Command.TARE_VALUE} {value} {unit}".encode("ascii") + CRLF


def tare_clear() -> bytes:
    """`TAC`: clear the tare memory."""
    return encode(Command.TARE_CLEAR)


def reset() -> bytes:
    """`@`: cancel whatever runs (also a running `SIR`) without zeroing; answers like `I4`."""
    return encode(Command.RESET)


def inquiry(number: int) -> bytes:
    """`I0`…`I5`: commands, level, balance data, software version, serial number, software id."""
    if not 0 <= number <= 5:
        raise ValueError(f"inquiry number must be 0-5, got {number}")
    return encode(f"I{number}")


def _malformed(raw: bytes, problem: str) -> Reply:
    return Reply(command="", status=Status.MALFORMED, raw=raw, problem=problem)


def _weight(command: str, status: Status, raw: bytes, value: str, unit: str) -> Reply:
    number = Decimal(value)
    factor = UNIT_KG.get(unit)
    if factor is None:
        return Reply(command, status, raw, number, unit, problem=f"unknown unit {unit!r}")
    return Reply(command, status, raw, number, unit, weight_kg=float(number * factor))


def decode_line(line: bytes) -> Reply:
    """Decode one reply line (without its CR LF); never raises."""
    raw = bytes(line)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return _malformed(raw, "non-ASCII bytes in the line")
    if not text.isprintable():
        return _malformed(raw, "control characters in the line")
    tokens = text.split()
    if not tokens:
        return _malformed(raw, "empty line")
    if len(tokens) == 1 and tokens[0] in _GENERAL_ERRORS:
        return Reply(command="", status=_GENERAL_ERRORS[tokens[0]], raw=raw)
    command = tokens[0]
    if not _ID.fullmatch(command) or len(tokens) < 2:
        return _malformed(raw, "not an MT-SICS reply")
    try:
        status = Status(tokens[1])
    except ValueError:
        return _malformed(raw, f"unknown status {tokens[1]!r}")
    if status in {Status.SYNTAX_ERROR, Status.TRANSMISSION_ERROR, Status.LOGICAL_ERROR}:
        return _malformed(raw, f"unknown status {tokens[1]!r}")
    rest = tokens[2:]
    if status in {Status.STABLE, Status.DYNAMIC, Status.DONE} and rest:
        # A weight: value then unit, whitespace-separated; column widths vary by family (§2.1).
        if len(rest) == 2 and _NUMBER.fullmatch(rest[0]):
            return _weight(command, status, raw, rest[0], rest[1])
        if status is Status.DONE:
            quoted = tuple(m.replace('""', '"') for m in _TEXT_PARAM.findall(text))
            return Reply(command, status, raw, text=quoted or tuple(rest))
        return _malformed(raw, "weight reply without a value and unit")
    if rest:
        return _malformed(raw, f"unexpected fields after status {status.value!r}")
    return Reply(command, status, raw)


class LineParser:
    """Streaming CR LF framer plus decoder: feed it bytes as they arrive, get whole replies back."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        """Keep at most `max_line` bytes of an unfinished line."""
        self._buffer = bytearray()
        self._max_line = max_line
        self._discarding = False
        self.discarded_bytes = 0
        """Bytes dropped because a line ran past `max_line` (noise on the line)."""

    def feed(self, data: bytes) -> list[Reply]:
        """Add bytes and return the replies of every line they completed; never raises."""
        replies: list[Reply] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._discarding:
                # The tail of an overlong line: the next line starts clean (resync).
                self._discarding = False
                self.discarded_bytes += len(line) + 1
                continue
            # CR LF ends a line (§2.1); accepting a bare LF costs nothing and helps with
            # balances set to LF-only line ends.
            line = line.removesuffix(b"\r")
            if line.strip():
                replies.append(decode_line(line))
        if len(self._buffer) > self._max_line:
            self.discarded_bytes += len(self._buffer)
            self._buffer.clear()
            self._discarding = True
        return replies
