"""What every serial UHF reader protocol gives the driver: frames as values, one parser API.

Two protocols are implemented, each IO-free behind the `FrameParser` interface:
`drivers.uhf_serial.r2000` (Impinj R2000/E710 modules, head byte 0xA0) and
`drivers.uhf_serial.m100` (Magicrf M100/QM100 modules, head byte 0xBB). A parser takes
whatever bytes the serial port delivered, returns the frames they complete, skips garbage
and frames with a bad checksum (counting both in `stats`) and never raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["FrameParser", "ParserStats", "Reply", "RoundEnd", "UhfError", "UhfFrame", "UhfTag"]


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


class FrameParser(Protocol):
    """The interface of every serial UHF protocol's parser."""

    stats: ParserStats

    def feed(self, data: bytes) -> list[UhfFrame]:
        """Add received bytes; return the frames they complete. Never raises."""
        ...

    def inventory_command(self) -> bytes:
        """The request that starts reading tags (one round or continuous polling)."""
        ...
