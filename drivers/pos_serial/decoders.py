"""Bytes from a till → sales and rejects, one decoder per stream format (IO-free).

Each decoder takes bytes as they arrive (`feed`) and is told when the line went quiet
(`idle`), which ends an open receipt or reads the last display screen. They wrap the
parsers of `parsing`, `escpos` and `display`; nothing here raises on wire bytes.
"""

from __future__ import annotations

from typing import Protocol

from drivers.pos_serial.config import Format, PosSerialConfig
from drivers.pos_serial.display import DisplayItem, DisplayTotal, PoleDisplayParser
from drivers.pos_serial.escpos import EscPosText
from drivers.pos_serial.parsing import LineFormat, Receipt, ReceiptParser, Reject, SaleLine

Output = SaleLine | Receipt | DisplayItem | DisplayTotal | Reject
MAX_LINE = 1024
"""Longest sale line kept; a longer run without LF is noise or a binary blob."""


class Decoder(Protocol):
    """What the driver needs of a stream format."""

    def feed(self, data: bytes) -> list[Output]:
        """Add bytes; return what they completed."""

    def idle(self) -> list[Output]:
        """The line went quiet: end what is open."""


class LineDecoder:
    """One sale per LF-terminated line, parsed with the configured pattern."""

    def __init__(self, pattern: str, encoding: str, decimal_separator: str) -> None:
        """Compile the pattern (checked already at config time)."""
        self._format = LineFormat(pattern, decimal_separator)
        self._encoding = encoding
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Output]:
        """Parse every complete line in `data`."""
        self._buffer += data
        out: list[Output] = []
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            out.extend(self._parse(line))
        if len(self._buffer) > MAX_LINE:
            out.append(Reject(self._text(bytes(self._buffer[:80])), "line too long, dropped"))
            self._buffer.clear()
        return out

    def idle(self) -> list[Output]:
        """A last line without its LF is still a line."""
        line, self._buffer = bytes(self._buffer), bytearray()
        return self._parse(line)

    def _text(self, raw: bytes) -> str:
        return raw.decode(self._encoding, errors="replace").rstrip("\r")

    def _parse(self, raw: bytes) -> list[Output]:
        text = self._text(raw)
        return [self._format.parse(text)] if text.strip() else []


class ReceiptDecoder:
    """ESC/POS printer stream → receipts, ended by a paper cut, an end line or idle time."""

    def __init__(self, cfg: PosSerialConfig) -> None:
        """Build the command stripper and the receipt state machine."""
        self._text = EscPosText(cfg.encoding)
        self._parser = ReceiptParser(cfg.receipt.receipt_format(), cfg.decimal_separator)

    def feed(self, data: bytes) -> list[Output]:
        """Strip commands, read lines, return finished receipts and rejected lines."""
        return list(self._parser.feed(self._text.feed(data)))

    def idle(self) -> list[Output]:
        """End the open receipt (its last line may lack an LF)."""
        out: list[Output] = list(self._parser.feed(self._text.flush()))
        out.extend(self._parser.end())
        return out

    @property
    def unknown_commands(self) -> int:
        """ESC/POS commands outside the table (only their two bytes were dropped)."""
        return self._text.unknown_commands


class DisplayDecoder:
    """Pole display stream → items and total screens."""

    def __init__(self, cfg: PosSerialConfig) -> None:
        """Build the screen model."""
        self._parser = PoleDisplayParser(
            cfg.encoding, cfg.display.total, cfg.display.ignore, cfg.decimal_separator
        )

    def feed(self, data: bytes) -> list[Output]:
        """Return what the screens completed by `data` showed."""
        return list(self._parser.feed(data))

    def idle(self) -> list[Output]:
        """Read the screen the POS left standing."""
        return list(self._parser.flush())

    @property
    def unknown_commands(self) -> int:
        """Display commands outside the tables."""
        return self._parser.unknown_commands


def make_decoder(cfg: PosSerialConfig) -> LineDecoder | ReceiptDecoder | DisplayDecoder:
    """The decoder for the configured format."""
    if cfg.format is Format.LINE:
        assert cfg.pattern is not None  # the config model requires it for this format
        return LineDecoder(cfg.pattern, cfg.encoding, cfg.decimal_separator)
    if cfg.format is Format.RECEIPT:
        return ReceiptDecoder(cfg)
    return DisplayDecoder(cfg)
