"""RO_ACCESS_REPORT decoding, IO-free and fast: TagReportData → `TagReport` tuples.

The gateway's goal is 100,000 tag reports a second on one core including the presence
update, so this module allocates one `TagReport` (plus its EPC string) per tag and
nothing per parameter: offsets and `struct.unpack_from` only. The common layout (EPC-96,
AntennaID, PeakRSSI, FirstSeenTimestampUTC, TagSeenCount — what our ROSpec asks for) is
recognised with one unpack; anything else goes through the general TV/TLV walk.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, NamedTuple

from drivers.llrp.params import LLRPDecodeError

if TYPE_CHECKING:
    from collections.abc import Callable

TAG_REPORT_DATA = 240
EPC_DATA = 241

_HH = struct.Struct(">HH")
_H = struct.Struct(">H")
_Q = struct.Struct(">Q")
# TagReportData(240, len 34): EPC-96 TV13, AntennaID TV1, PeakRSSI TV6, FirstSeenUTC TV2,
# TagSeenCount TV8 — the order spec §16.2.7.3 fixes for the selector 0x1680.
_COMMON = struct.Struct(">HHB12sBHBbBQBH")
_COMMON_LEN = 34

# Fixed value sizes of the TV parameters a TagReportData may hold (spec §16.2.7.3,
# protocols.md §1.1). A TV type missing here cannot be skipped: it has no length field.
_TV_SIZE: dict[int, int] = {
    1: 2,  # AntennaID
    2: 8,  # FirstSeenTimestampUTC
    3: 8,  # FirstSeenTimestampUptime
    4: 8,  # LastSeenTimestampUTC
    5: 8,  # LastSeenTimestampUptime
    6: 1,  # PeakRSSI
    7: 2,  # ChannelIndex
    8: 2,  # TagSeenCount
    9: 4,  # ROSpecID
    10: 2,  # InventoryParameterSpecID
    11: 2,  # C1G2CRC
    12: 2,  # C1G2PC
    13: 12,  # EPC-96
    14: 2,  # SpecIndex
    15: 2,  # ClientRequestOpSpecResult
    16: 4,  # AccessSpecID
    17: 2,  # OpSpecID
    18: 4,  # C1G2SingulationDetails
}


class TagReport(NamedTuple):
    """One TagReportData: EPC (lower-case hex), antenna (1-based; 0 = not reported),
    peak RSSI in dBm, first-seen µs (UTC, or reader uptime when `uptime`), seen count."""

    epc: str
    antenna: int
    rssi: int | None
    first_seen_us: int | None
    seen_count: int
    uptime: bool


class RoAccessReport(NamedTuple):
    """A decoded RO_ACCESS_REPORT: its tags, and how many parameters were skipped
    (unknown, vendor or unwanted ones, and tag entries without an EPC)."""

    tags: list[TagReport]
    skipped: int


_new_tag = tuple.__new__  # C-level constructor: the NamedTuple's own __new__ is Python code


def decode_ro_access_report(body: bytes) -> RoAccessReport:
    """Decode an RO_ACCESS_REPORT body; raises only LLRPDecodeError, on broken lengths."""
    tags: list[TagReport] = []
    append = tags.append
    skipped = 0
    end = len(body)
    pos = 0
    unpack_hh = _HH.unpack_from
    unpack_common = _COMMON.unpack_from
    while pos < end:
        if end - pos < 4:
            raise LLRPDecodeError(f"truncated parameter at offset {pos}")
        word, length = unpack_hh(body, pos)
        if word & 0x8000 or length < 4 or pos + length > end:
            raise LLRPDecodeError(f"bad report parameter at offset {pos}")
        if word != TAG_REPORT_DATA:
            # RFSurveyReportData, Custom (vendor) and anything newer: skipped by length.
            skipped += 1
        elif length == _COMMON_LEN:
            _w, _n, m1, epc, m2, ant, m3, rssi, m4, ts, m5, count = unpack_common(body, pos)
            if m1 == 0x8D and m2 == 0x81 and m3 == 0x86 and m4 == 0x82 and m5 == 0x88:
                append(_new_tag(TagReport, (epc.hex(), ant, rssi, ts, count, False)))
            else:
                skipped += _decode_tag(body, pos + 4, pos + length, append)
        else:
            skipped += _decode_tag(body, pos + 4, pos + length, append)
        pos += length
    return RoAccessReport(tags, skipped)


def _decode_tag(data: bytes, pos: int, end: int, append: Callable[[TagReport], None]) -> int:
    """The general walk over one TagReportData's parameters; returns the skipped count."""
    epc: str | None = None
    antenna = 0
    rssi: int | None = None
    first_seen: int | None = None
    uptime = False
    count = 1
    skipped = 0
    while pos < end:
        first = data[pos]
        if first & 0x80:
            tv = first & 0x7F
            size = _TV_SIZE.get(tv)
            if size is None:
                # An unknown TV has no length: the rest of this entry cannot be parsed.
                skipped += 1
                break
            value = pos + 1
            if value + size > end:
                raise LLRPDecodeError(f"TV parameter {tv} overruns its TagReportData")
            if tv == 13:
                epc = data[value : value + 12].hex()
            elif tv == 1:
                antenna = (data[value] << 8) | data[value + 1]
            elif tv == 6:
                rssi = data[value] - 256 if data[value] & 0x80 else data[value]
            elif tv in (2, 3):
                (first_seen,) = _Q.unpack_from(data, value)
                uptime = tv == 3
            elif tv == 8:
                count = (data[value] << 8) | data[value + 1]
            pos = value + size
            continue
        if end - pos < 4:
            raise LLRPDecodeError("truncated parameter inside TagReportData")
        word, length = _HH.unpack_from(data, pos)
        if length < 4 or pos + length > end:
            raise LLRPDecodeError("bad parameter length inside TagReportData")
        if word & 0x3FF == EPC_DATA and epc is None and length >= 6:
            (bits,) = _H.unpack_from(data, pos + 4)
            nbytes = min((bits + 7) // 8, length - 6)
            epc = data[pos + 6 : pos + 6 + nbytes].hex()
        else:
            skipped += 1  # AirProtocolTagData, OpSpecResults, Custom, ...
        pos += length
    if epc is None:
        return skipped + 1
    append(_new_tag(TagReport, (epc, antenna, rssi, first_seen, count, uptime)))
    return skipped
