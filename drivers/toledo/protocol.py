"""Toledo continuous output, IO-free: frame scanning, checksum and status-word decoding.

Format per protocols.md §2.2 (Mettler Toledo definition; Wildcat manual appendix 2, IND445
and Kern FTC interface chapters): STX, status words A/B/C, six weight digits, six tare digits
(omitted by short variants), CR, optional checksum. The indicator streams frames without
being asked, so the parser scans for STX and resynchronises on the next one after any damage.
Nothing here raises on wire bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

STX = 0x02
CR = 0x0D
LB_KG = Decimal("0.45359237")
OZ_KG = Decimal("0.028349523125")


class Unit(IntEnum):
    """SWC bits 0-2 (§2.2); code 0 defers to SWB bit 4 (lb or kg)."""

    LB_OR_KG = 0
    GRAM = 1
    METRIC_TON = 2
    OUNCE = 3
    NONE = 7


_UNIT_KG: dict[int, Decimal] = {Unit.GRAM: Decimal("0.001"), Unit.METRIC_TON: Decimal(1000)}
_UNIT_KG[Unit.OUNCE] = OZ_KG

# SWA bits 0-2: digits after the decimal point. Codes 0 and 1 ("XXXX00", "XXXXX0") mark
# dummy zeros on the display; the six transmitted digits are the displayed ones, so they
# scale like code 2 (§2.2; unverified on a device that shows dummy zeros).
_DECIMALS = (0, 0, 0, 1, 2, 3, 4, 5)


def checksum(body: bytes) -> int:
    """Two's complement of the 7-bit sum of `body` (STX through CR), 7 bits wide (§2.2)."""
    return (-sum(b & 0x7F for b in body)) & 0x7F


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame; `weight_kg` is the displayed (gross or net) weight, None if unusable."""

    raw: bytes
    weight_kg: float | None
    tare_kg: float
    stable: bool
    net: bool
    fault: str | None
    print_request: bool = False


def _digits(field: bytes) -> int | None:
    # Some emulations blank leading zeros with spaces (Mettler manuals call them
    # "non-significant"); anything else that is not a digit marks a damaged frame.
    text = field.decode("ascii").lstrip(" ")
    if not text:
        return 0
    if not text.isdigit() or not text.isascii():
        return None
    return int(text)


def decode_frame(raw: bytes) -> Frame | None:
    """Decode one frame from STX through CR (checksum not included); None if it is not valid."""
    if len(raw) not in (11, 17) or raw[0] != STX or raw[-1] != CR:
        return None
    swa, swb, swc = raw[1], raw[2], raw[3]
    weight_digits = _digits(raw[4:10])
    tare_digits = _digits(raw[10:16]) if len(raw) == 17 else 0
    if weight_digits is None or tare_digits is None:
        return None
    scale = Decimal(10) ** -_DECIMALS[swa & 0x07]
    weight = weight_digits * scale
    tare = tare_digits * scale
    if swb & 0x02:
        weight = -weight
    unit_code = swc & 0x07
    faults: list[str] = []
    if unit_code == Unit.LB_OR_KG:
        factor: Decimal | None = Decimal(1) if swb & 0x10 else LB_KG
    else:
        factor = _UNIT_KG.get(unit_code)
        if factor is None:
            faults.append(f"unit code {unit_code} cannot be converted to kg")
    if swb & 0x04:
        faults.append("out of range (over capacity or under zero)")
    if swb & 0x40:
        # Mettler and Fairbanks agree on bit 6 = power-up; bit 5 differs by vendor (§8).
        faults.append("not zeroed since power-up")
    motion = bool(swb & 0x08)
    usable = factor is not None and not swb & 0x04
    return Frame(
        raw=raw,
        weight_kg=float(weight * factor) if usable and factor is not None else None,
        tare_kg=float(tare * factor) if factor is not None else 0.0,
        stable=usable and not motion,
        net=bool(swb & 0x01),
        fault="; ".join(faults) or None,
        print_request=bool(swc & 0x08),
    )


class FrameParser:
    """Streaming parser: feed bytes as they arrive, get every valid frame back."""

    def __init__(self, *, tare_field: bool = True, checksum: bool = False) -> None:
        """Frame layout is fixed per indicator setting: with or without tare and checksum."""
        self._body_len = 17 if tare_field else 11
        self._checksum = checksum
        self._frame_len = self._body_len + (1 if checksum else 0)
        self._buffer = bytearray()
        self.discarded_bytes = 0
        """Bytes skipped while looking for a valid frame (noise, damaged or cut frames)."""
        self.bad_checksums = 0
        """Frames that were well formed but failed the checksum."""

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes and return the frames they completed; never raises."""
        # Bit 7 is the parity bit when a 7E1 line is read as 8N1 (§2.2): drop it everywhere.
        self._buffer += bytes(b & 0x7F for b in data)
        frames: list[Frame] = []
        while True:
            start = self._buffer.find(STX)
            if start < 0:
                self.discarded_bytes += len(self._buffer)
                self._buffer.clear()
                break
            if start:
                self.discarded_bytes += start
                del self._buffer[:start]
            if len(self._buffer) < self._frame_len:
                break
            frame = self._take()
            if frame is None:
                # Resync: this STX started no valid frame, look for the next one.
                self.discarded_bytes += 1
                del self._buffer[:1]
            else:
                frames.append(frame)
                # A checksum byte that happens to be STX is left in place: if it really was
                # the next frame's start (a garbage "frame" before it), nothing is lost.
                taken = self._frame_len
                if self._checksum and self._buffer[self._body_len] == STX:
                    taken = self._body_len
                del self._buffer[:taken]
        return frames

    def _take(self) -> Frame | None:
        body = bytes(self._buffer[: self._body_len])
        if body[-1] != CR or STX in body[1:]:
            return None
        if self._checksum and self._buffer[self._body_len] != checksum(body):
            self.bad_checksums += 1
            return None
        return decode_frame(body)
