"""ESC/POS receipt streams, IO-free: strip printer commands by their documented lengths.

A receipt printer stream is text in the printer's code page, lines ended by LF, with
commands in between (protocols.md §4.2; python-escpos constants and Epson TM manuals). A
command's parameters may be any byte, including LF and printable text, so each command is
skipped by its documented length, never by guessing where the text resumes. A command that
is not in the table loses only its two command bytes and is counted. Paper cuts
(`GS V`, `ESC i`, `ESC m`) come out as `CUT`, the end of a receipt.
"""

from __future__ import annotations

import codecs
from enum import Enum
from typing import Final

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
LF, CR, HT = 0x0A, 0x0D, 0x09


class Marker(Enum):
    """Non-text tokens in the stream."""

    CUT = "cut"


CUT: Final = Marker.CUT
MAX_DATA = 256 * 1024
"""Largest image or 2D-code payload believed; a larger length field is damage, not data
(a full-width 576-dot logo of 2,000 rows is 144 KB)."""

# Fixed parameter counts after the two command bytes (§4.2 table, Epson TM command reference).
_ESC_FIXED: dict[int, int] = {
    0x40: 0, 0x32: 0, 0x21: 1, 0x45: 1, 0x2D: 1, 0x47: 1, 0x4D: 1, 0x61: 1, 0x64: 1,
    0x4A: 1, 0x33: 1, 0x74: 1, 0x52: 1, 0x7B: 1, 0x72: 1, 0x70: 3, 0x20: 1, 0x24: 2,
    0x5C: 2, 0x25: 1, 0x55: 1, 0x56: 1, 0x54: 1, 0x3D: 1, 0x65: 1, 0x4C: 0, 0x53: 0,
    0x0C: 0, 0x63: 2,  # ESC c 3/4/5 n: sub-function byte plus n
}  # fmt: skip
_ESC_CUTS = {0x69, 0x6D}  # ESC i / ESC m: partial cut, no parameters (Epson)
_GS_FIXED: dict[int, int] = {
    0x21: 1, 0x42: 1, 0x48: 1, 0x66: 1, 0x68: 1, 0x77: 1, 0x62: 1, 0x4C: 2, 0x57: 2,
    0x50: 2, 0x61: 1, 0x72: 1, 0x49: 1, 0x24: 2, 0x5C: 2, 0x2F: 1,
}  # fmt: skip
_FS_FIXED: dict[int, int] = {0x70: 2, 0x26: 0, 0x2E: 0, 0x21: 1, 0x2D: 1, 0x43: 1, 0x57: 1}
_DLE_FIXED: dict[int, int] = {0x04: 1, 0x05: 1}  # DLE EOT n, DLE ENQ n (real-time)
# GS V m: m 65/66 (function B) carry a feed amount n (§4.2); Epson adds 97/98 and 103/104.
_CUT_WITH_FEED = {65, 66, 97, 98, 103, 104}


class EscPosText:
    """Streaming command stripper: feed bytes, get decoded lines (str) and `CUT` markers."""

    def __init__(
        self, encoding: str = "utf-8", max_line: int = 512, max_data: int = MAX_DATA
    ) -> None:
        """Decode text with `encoding` (any Python codec: utf-8, gb18030, cp437, …)."""
        codecs.lookup(encoding)  # an unknown codec fails here, at config time
        self._encoding = encoding
        self._max_line = max_line
        self._max_data = max_data
        self._pending = bytearray()  # an unfinished command
        self._line = bytearray()
        self._skip = 0  # parameter bytes still to drop (large images arrive in chunks)
        self._skip_to_nul = False  # GS k m 0-6: barcode data ends with NUL
        self.unknown_commands = 0
        """Commands not in the table: only their two bytes were dropped."""
        self.overlong_lines = 0
        """Lines cut at `max_line` bytes (no LF in sight: noise or a binary blob)."""

    def feed(self, data: bytes) -> list[str | Marker]:
        """Add bytes; return the lines and cuts they completed, in stream order; never raises."""
        out: list[str | Marker] = []
        view = memoryview(data)
        i = 0
        while i < len(view):
            if self._skip:
                step = min(self._skip, len(view) - i)
                self._skip -= step
                i += step
                continue
            if self._skip_to_nul:
                nul = bytes(view[i:]).find(0)
                if nul < 0:
                    break
                self._skip_to_nul = False
                i += nul + 1
                continue
            byte = view[i]
            i += 1
            if self._pending or byte in (ESC, GS, FS, DLE):
                self._pending.append(byte)
                self._command(out)
            elif byte == LF:
                self._end_line(out)
            elif byte == HT:
                self._line.append(0x20)
            elif byte >= 0x20 and byte != 0x7F:
                self._line.append(byte)
                if len(self._line) >= self._max_line:
                    self.overlong_lines += 1
                    self._end_line(out)
            # Other C0 controls (CR, FF, CAN, …) carry no text.
        return out

    def flush(self) -> list[str | Marker]:
        """Return the unfinished line, if any (the stream went idle without a final LF)."""
        out: list[str | Marker] = []
        if self._line:
            self._end_line(out)
        return out

    def _end_line(self, out: list[str | Marker]) -> None:
        out.append(self._line.decode(self._encoding, errors="replace").rstrip())
        self._line.clear()

    def _command(self, out: list[str | Marker]) -> None:
        """Resolve `self._pending` once enough bytes are there to know its length."""
        cmd = self._pending
        if len(cmd) < 2:
            return
        prefix, code = cmd[0], cmd[1]
        fixed = {ESC: _ESC_FIXED, GS: _GS_FIXED, FS: _FS_FIXED, DLE: _DLE_FIXED}[prefix]
        if code in fixed:
            self._done(fixed[code])
        elif prefix == ESC and code in _ESC_CUTS:
            self._done(0, out)
        elif prefix == ESC and code == 0x2A:  # ESC * m nL nH: bit image
            if len(cmd) >= 5:
                dots = cmd[3] + 256 * cmd[4]
                self._done(0, skip=dots * (1 if cmd[2] < 2 else 3))
        elif prefix == GS and code == 0x56:  # GS V m [n]: cut
            if len(cmd) >= 3:
                self._done(2 if cmd[2] in _CUT_WITH_FEED else 1, out)
        elif prefix == GS and code == 0x6B:  # GS k m: barcode
            if len(cmd) >= 3:
                if cmd[2] <= 6:
                    self._pending.clear()
                    self._skip_to_nul = True
                elif len(cmd) >= 4:
                    self._done(0, skip=cmd[3])
        elif prefix == GS and code == 0x76:  # GS v 0 m xL xH yL yH: raster image
            if len(cmd) >= 8:
                self._done(0, skip=(cmd[4] + 256 * cmd[5]) * (cmd[6] + 256 * cmd[7]))
        elif prefix == GS and code == 0x28:  # GS ( fn pL pH …: 2D codes, graphics
            if len(cmd) >= 5:
                self._done(0, skip=cmd[3] + 256 * cmd[4])
        elif prefix == GS and code == 0x38:  # GS 8 L p1..p4 …: large graphics, 32-bit length
            if len(cmd) >= 7:
                self._done(0, skip=int.from_bytes(cmd[3:7], "little"))
        elif prefix == GS and code == 0x2A:  # GS * x y d…: downloaded bit image, x·y·8 bytes
            if len(cmd) >= 4:
                self._done(0, skip=cmd[2] * cmd[3] * 8)
        else:
            self.unknown_commands += 1
            self._pending.clear()

    def _done(self, params: int, out: list[str | Marker] | None = None, skip: int = 0) -> None:
        """Finish the pending command once its fixed parameters have arrived."""
        if len(self._pending) < 2 + params and skip == 0:
            return
        if skip > self._max_data:
            # A length no receipt carries: noise made this look like an image. Skipping it
            # would swallow the next receipts, so only the command bytes go.
            self.unknown_commands += 1
            self._pending.clear()
            return
        if out is not None:
            if self._line:
                self._end_line(out)
            out.append(CUT)
        self._pending.clear()
        self._skip = skip
