"""Customer pole display (VFD 2x20) streams, IO-free: a screen model yielding (name, price) items.

Command sets per protocols.md §4.1: Epson ESC/POS display mode (`1F …` and C0 cursor
controls) and CD5220 (`ESC Q A/B text CR` string mode); one parser understands both, since
their command bytes do not collide. The parser keeps the screen the customer sees and reads
it when the POS starts a new screen (clear, home, init), after a CD5220 lower-line write (the
usual end of a per-item update), or when the driver calls `flush()` after an idle gap. A
display shows no SKU and no transaction number (§4.3): the driver resolves names through the
catalog and uses `DisplayTotal` screens as transaction boundaries.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from decimal import Decimal

from drivers.pos_serial.parsing import Reject, compile_pattern, parse_money

ROWS, COLS = 2, 20
ESC, US = 0x1B, 0x1F
_MONEY = re.compile(r"-?\d[\d,]*(?:[.,]\d+)?-?")
_QTY_LINE = re.compile(r"^(?P<qty>\d+(?:[.,]\d+)?)\s*[@xX*]\s*(?P<price>\S+)\s+(?P<amount>\S+)$")
# Fixed parameter counts after the two command bytes (§4.1 tables).
_US_FIXED = {0x24: 2, 0x01: 0, 0x02: 0, 0x03: 0, 0x43: 1, 0x58: 1, 0x45: 1}
_ESC_FIXED = {0x40: 0, 0x6C: 2, 0x11: 0, 0x12: 0, 0x13: 0, 0x5F: 1, 0x2A: 1, 0x66: 1, 0x74: 1}
_ESC_FIXED |= {0x52: 1, 0x3D: 1}
_MODES = {(US, 0x01): "overwrite", (US, 0x02): "vertical", (US, 0x03): "horizontal"}
_MODES |= {(ESC, 0x11): "overwrite", (ESC, 0x12): "vertical", (ESC, 0x13): "horizontal"}


@dataclass(frozen=True, slots=True)
class DisplayItem:
    """One item as the display showed it: name, unit price, quantity and line total."""

    name: str
    price: Decimal
    qty: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class DisplayTotal:
    """A total screen (`TOTAL 12.90`): the end of a transaction on a display stream."""

    text: str
    amount: Decimal | None


class PoleDisplayParser:
    """Streaming parser for Epson-mode and CD5220 pole display byte streams."""

    def __init__(
        self,
        encoding: str = "cp437",
        total: str = r"^\s*(?:SUB)?TOTAL\b",
        ignore: str | None = r"^\s*(?:CASH|CHANGE|CARD|WELCOME|THANK)",
        decimal_separator: str = ".",
    ) -> None:
        """Check the codec and patterns now; matching is case-sensitive unless `(?i)` is used."""
        codecs.lookup(encoding)
        self._encoding = encoding
        self._total = compile_pattern(total, (), what="display total pattern")
        self._ignore = (
            compile_pattern(ignore, (), what="display ignore pattern") if ignore else None
        )
        parse_money("0", decimal_separator)
        self._sep = decimal_separator
        self._screen = [bytearray(b" " * COLS) for _ in range(ROWS)]
        self._row = self._col = 0
        self._mode = "overwrite"
        self._dirty = False
        self._pending = bytearray()
        self.unknown_commands = 0
        """Commands not in the §4.1 tables: only their two bytes were dropped."""

    def feed(self, data: bytes) -> list[DisplayItem | DisplayTotal | Reject]:
        """Add bytes; return what the screens they completed showed; never raises."""
        out: list[DisplayItem | DisplayTotal | Reject] = []
        for byte in data:
            if self._pending or byte in (ESC, US):
                self._pending.append(byte)
                self._command(out)
            elif byte in (0x0C, 0x0B):  # clear screen / cursor home: a new screen starts
                out.extend(self.flush())
                if byte == 0x0C:
                    self._clear()
                self._row = self._col = 0
            elif byte == 0x18:  # clear the cursor line
                self._screen[self._row][:] = b" " * COLS
                self._col, self._dirty = 0, True
            elif byte == 0x0D:
                self._col = 0
            elif byte == 0x0A:
                self._line_feed()
            elif byte == 0x09:
                self._advance()
            elif byte == 0x08:
                self._col = max(0, self._col - 1)
            elif byte >= 0x20 and byte != 0x7F:
                self._put(byte)
        return out

    def flush(self) -> list[DisplayItem | DisplayTotal | Reject]:
        """Read the current screen if it changed since it was last read."""
        if not self._dirty:
            return []
        self._dirty = False
        upper, lower = (
            row.decode(self._encoding, errors="replace").strip() for row in self._screen
        )
        if not upper and not lower:
            return []
        text = f"{upper} / {lower}" if lower else upper
        if any(self._total.search(line) for line in (upper, lower)):
            money = _MONEY.findall(lower) or _MONEY.findall(upper)
            return [DisplayTotal(text, parse_money(money[-1], self._sep) if money else None)]
        if self._ignore and any(self._ignore.search(line) for line in (upper, lower)):
            return []
        return [self._item(upper, lower, text)]

    def _item(self, upper: str, lower: str, text: str) -> DisplayItem | Reject:
        qty = Decimal(1)
        amount: Decimal | None = None
        price: Decimal | None = None
        name = upper
        if match := _QTY_LINE.match(lower):
            qty_value = parse_money(match["qty"], self._sep)
            price = parse_money(match["price"], self._sep)
            amount = parse_money(match["amount"], self._sep)
            qty = qty_value if qty_value is not None else qty
        elif money := _MONEY.findall(lower):
            price = amount = parse_money(money[-1], self._sep)
        elif (money := _MONEY.findall(upper)) and upper.endswith(money[-1]):
            # One-line layout "COKE 330ML      1.20" with the lower line used for totals.
            price = amount = parse_money(money[-1], self._sep)
            name = upper[: -len(money[-1])].strip()
        if not name:
            return Reject(text, "no item name on the display")
        if price is None or amount is None or qty == 0:
            return Reject(text, "no price on the display")
        return DisplayItem(name, price, qty, amount)

    def _clear(self) -> None:
        for row in self._screen:
            row[:] = b" " * COLS

    def _put(self, byte: int) -> None:
        if self._mode == "horizontal" and self._col >= COLS:
            # Horizontal scroll mode: the line moves left and the new character enters at the end.
            del self._screen[self._row][0]
            self._screen[self._row].append(byte)
        else:
            if self._col >= COLS:
                self._col = 0
                self._line_feed()
            self._screen[self._row][self._col] = byte
            self._col += 1
        self._dirty = True

    def _advance(self) -> None:
        self._col += 1
        if self._col >= COLS and self._mode != "horizontal":
            self._col = 0
            self._line_feed()

    def _line_feed(self) -> None:
        if self._row < ROWS - 1:
            self._row += 1
        elif self._mode == "vertical":
            self._screen[0][:] = self._screen[1]
            self._screen[1][:] = b" " * COLS
            self._dirty = True
        else:
            self._row = 0  # overwrite mode: the cursor wraps to the upper line (Epson)

    def _command(self, out: list[DisplayItem | DisplayTotal | Reject]) -> None:
        cmd = self._pending
        if len(cmd) < 2:
            return
        prefix, code = cmd[0], cmd[1]
        if prefix == ESC and code == 0x51:  # CD5220 ESC Q A/B/D text CR: string mode
            if len(cmd) > 3 + COLS * 2 and cmd[-1] != 0x0D:
                self.unknown_commands += 1  # no CR in sight: give up on this command
                cmd.clear()
            elif len(cmd) >= 4 and cmd[-1] == 0x0D:
                self._string_mode(out, cmd[2], bytes(cmd[3:-1]))
                cmd.clear()
            return
        fixed = (_US_FIXED if prefix == US else _ESC_FIXED).get(code)
        if fixed is None:
            self.unknown_commands += 1
            cmd.clear()
            return
        if len(cmd) < 2 + fixed:
            return
        if (prefix, code) in {(US, 0x24), (ESC, 0x6C)}:
            # Epson US $ x y and CD5220 ESC l x y: cursor to column x, row y (1-based).
            self._col, self._row = min(max(cmd[2], 1), COLS) - 1, min(max(cmd[3], 1), ROWS) - 1
        elif prefix == ESC and code == 0x40:  # initialise: a new screen starts
            out.extend(self.flush())
            self._clear()
            self._row = self._col = 0
            self._mode = "overwrite"
        self._mode = _MODES.get((prefix, code), self._mode)
        cmd.clear()

    def _string_mode(
        self, out: list[DisplayItem | DisplayTotal | Reject], line: int, text: bytes
    ) -> None:
        if line not in (0x41, 0x42):
            return  # ESC Q D: a continuously scrolling message (a greeting), not an item
        row = 0 if line == 0x41 else 1
        self._screen[row][:] = text[:COLS].ljust(COLS, b" ")
        self._dirty = True
        if row == 1:
            # The usual per-item update writes the upper line, then the lower one (§4.1).
            out.extend(self.flush())
