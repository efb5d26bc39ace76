"""What every serial UHF reader protocol gives the driver: frames as values, one parser API.

Two protocols are implemented, each IO-free behind the `FrameParser` interface:
`drivers.uhf_serial.r2000` (Impinj R2000/E710 modules, head byte 0xA0) and
`drivers.uhf_serial.m100` (Magicrf M100/QM100 modules, head byte 0xBB). A parser takes
whatever bytes the serial port delivered, returns the frames they complete, skips garbage
and frames with a bad checksum (counting both in `stats`) and never raises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = [
    "FrameParser",
    "HeadScanner",
    "ParserStats",
    "Reply",
    "RoundEnd",
    "UhfError",
    "UhfFrame",
    "UhfTag",
]


class UhfTag(NamedTuple):
    """One tag read: EPC (lower-case hex), antenna (1-based port), RSSI in dBm, the raw
    RSSI byte, the Gen2 PC word, the hop-table index (None if unknown) and reads merged."""

    epc: str
    antenna: int
    rssi: int
    rssi_raw: int
    pc: int
    frequency_index: int | None
    reads: int


@dataclass(frozen=True, slots=True)
class RoundEnd:
    """The end of one inventory round (R2000 0x89/0x8B): reads per second and in total."""

    antenna: int
    read_rate: int
    total_reads: int


@dataclass(frozen=True, slots=True)
class UhfError:
    """An error reply; `no_tag` marks the "nothing in the field" code, which is routine."""

    command: int
    code: int
    text: str
    no_tag: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """Any other valid reply frame, undecoded: its command code and data bytes."""

    command: int
    data: bytes


UhfFrame = UhfTag | RoundEnd | UhfError | Reply


@dataclass(slots=True)
class ParserStats:
    """Counters a parser keeps for status: frames decoded, bytes and frames thrown away."""

    frames: int = 0
    garbage_bytes: int = 0
    bad_frames: int = 0


class HeadScanner(ABC):
    """The resynchronising scan both serial protocols share, around their frame rules.

    Find the head byte; ask the protocol how long the frame starting there is (`_length`,
    None for an impossible header) and whether it is intact (`_intact`); decode it. A bad
    header or checksum drops one byte and scans on (head bytes also occur inside EPCs). A
    start whose announced length has not arrived yet waits — unless a complete, intact
    frame already follows it: then the start was line noise announcing a long frame, and
    waiting would hold every real reply behind it for several inventory rounds.
    """

    head: int  # the protocol's head byte
    header: int  # bytes from the head needed to know the frame's length

    def __init__(self) -> None:
        self.stats = ParserStats()
        self._buf = bytearray()

    @abstractmethod
    def _length(self, buf: bytearray, pos: int) -> int | None:
        """The whole frame's length from its header at `pos` (None: no valid header)."""

    @abstractmethod
    def _intact(self, buf: bytearray, pos: int, end: int) -> bool:
        """Whether `buf[pos:end]` is an intact frame (checksum, end byte)."""

    @abstractmethod
    def _decode(self, buf: bytearray, pos: int, end: int) -> UhfFrame:
        """The frame `buf[pos:end]` as a value."""

    def feed(self, data: bytes) -> list[UhfFrame]:
        """Add received bytes; return the frames they complete. Never raises."""
        buf = self._buf
        buf += data
        stats = self.stats
        out: list[UhfFrame] = []
        pos = 0
        while True:
            start = buf.find(self.head, pos)
            if start < 0:
                stats.garbage_bytes += len(buf) - pos
                pos = len(buf)
                break
            stats.garbage_bytes += start - pos
            pos = start
            if len(buf) - pos < self.header:
                break
            total = self._length(buf, pos)
            if total is None:
                stats.bad_frames += 1
                pos += 1
                continue
            end = pos + total
            if end > len(buf):
                later = self._complete_frame_after(buf, pos + 1)
                if later is None:
                    break
                stats.garbage_bytes += later - pos
                stats.bad_frames += 1
                pos = later
                continue
            if not self._intact(buf, pos, end):
                stats.bad_frames += 1
                pos += 1
                continue
            out.append(self._decode(buf, pos, end))
            stats.frames += 1
            pos = end
        del buf[:pos]
        return out

    def _complete_frame_after(self, buf: bytearray, start: int) -> int | None:
        """Where the first complete, intact frame at or after `start` begins, if any."""
        i = buf.find(self.head, start)
        while i >= 0 and len(buf) - i >= self.header:
            total = self._length(buf, i)
            if total is not None and i + total <= len(buf) and self._intact(buf, i, i + total):
                return i
            i = buf.find(self.head, i + 1)
        return None


class FrameParser(Protocol):
    """The interface of every serial UHF protocol's parser."""

    stats: ParserStats

    def feed(self, data: bytes) -> list[UhfFrame]:
        """Add received bytes; return the frames they complete. Never raises."""
        ...

    def inventory_command(self) -> bytes:
        """The request that starts reading tags (one round or continuous polling)."""
        ...
