"""LLRP parameter layer, IO-free: encoders for the specs a client sends, decoders for
LLRPStatus and READER_EVENT_NOTIFICATION.

Parameters are TLV (6 reserved bits, 10 type bits, u16 length including the 4-octet
header) or TV (first bit 1, 7 type bits, fixed-size value) — LLRP 1.0.1 §15.2. Every
decoder checks each length against its enclosing parameter and raises `LLRPDecodeError`
(never IndexError or struct.error) on malformed input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_SELECTOR = 0x1680
"""TagReportContentSelector: AntennaID, PeakRSSI, FirstSeenTimestamp, TagSeenCount
(bits 12, 10, 9, 7; spec §16.2.7.1; protocols.md's worked value)."""

_HH = struct.Struct(">HH")
_H = struct.Struct(">H")
_B = struct.Struct(">B")
_Q = struct.Struct(">Q")
_BI = struct.Struct(">BI")
_BH = struct.Struct(">BH")
_IBB = struct.Struct(">IBB")
_HB = struct.Struct(">HB")

# TLV parameter type numbers (spec §16.2, protocols.md §1.1).
UTC_TIMESTAMP = 128
UPTIME = 129
ROSPEC = 177
RO_BOUNDARY_SPEC = 178
ROSPEC_START_TRIGGER = 179
ROSPEC_STOP_TRIGGER = 182
AISPEC = 183
AISPEC_STOP_TRIGGER = 184
INVENTORY_PARAMETER_SPEC = 186
KEEPALIVE_SPEC = 220
EVENTS_AND_REPORTS = 226
RO_REPORT_SPEC = 237
TAG_REPORT_CONTENT_SELECTOR = 238
READER_EVENT_NOTIFICATION_SPEC = 244
EVENT_NOTIFICATION_STATE = 245
READER_EVENT_NOTIFICATION_DATA = 246
ROSPEC_EVENT = 249
READER_EXCEPTION_EVENT = 252
ANTENNA_EVENT = 255
CONNECTION_ATTEMPT_EVENT = 256
CONNECTION_CLOSE_EVENT = 257
LLRP_STATUS = 287
FIELD_ERROR = 288
PARAMETER_ERROR = 289

PROTOCOL_EPC_C1G2 = 1


class LLRPProtocolError(ValueError):
    """Bytes that break the LLRP specification; the only exception our decoders raise."""


class LLRPDecodeError(LLRPProtocolError):
    """One message's body is malformed: count it and go on (the framing is intact)."""


class StartTrigger(IntEnum):
    """ROSpecStartTrigger types we use (spec §16.2.4.1.1.1)."""

    NULL = 0
    IMMEDIATE = 1


class ReportTrigger(IntEnum):
    """ROReportTrigger (spec §16.2.7.1): when the reader sends RO_ACCESS_REPORT."""

    NONE = 0
    N_TAGS_OR_END_OF_AISPEC = 1
    N_TAGS_OR_END_OF_ROSPEC = 2


class NotificationEvent(IntEnum):
    """EventNotificationState event types (spec §16.2.7.6.1)."""

    HOPPING = 0
    GPI = 1
    ROSPEC = 2
    REPORT_BUFFER_FILL_WARNING = 3
    READER_EXCEPTION = 4
    RF_SURVEY = 5
    AISPEC = 6
    AISPEC_WITH_DETAILS = 7
    ANTENNA = 8


STATUS_NAMES: dict[int, str] = {
    0: "M_Success",
    100: "M_ParameterError",
    101: "M_FieldError",
    102: "M_UnexpectedParameter",
    103: "M_MissingParameter",
    104: "M_DuplicateParameter",
    105: "M_OverflowParameter",
    106: "M_OverflowField",
    107: "M_UnknownParameter",
    108: "M_UnknownField",
    109: "M_UnsupportedMessage",
    110: "M_UnsupportedVersion",
    111: "M_UnsupportedParameter",
    200: "P_ParameterError",
    201: "P_FieldError",
    202: "P_UnexpectedParameter",
    203: "P_MissingParameter",
    204: "P_DuplicateParameter",
    205: "P_OverflowParameter",
    206: "P_OverflowField",
    207: "P_UnknownParameter",
    208: "P_UnknownField",
    209: "P_UnsupportedParameter",
    300: "A_Invalid",
    301: "A_OutOfRange",
    401: "R_DeviceError",
}

CONNECTION_STATUS_TEXT: dict[int, str] = {
    0: "success",
    1: "failed: a reader-initiated connection already exists",
    2: "failed: a client-initiated connection already exists",
    3: "failed: reason other than an existing connection",
    4: "another connection attempted",
}


def status_name(code: int) -> str:
    """The spec's name of an LLRPStatus code, e.g. 101 → 'M_FieldError'."""
    return STATUS_NAMES.get(code, f"unknown status {code}")


def tlv(param_type: int, value: bytes) -> bytes:
    """Encode one TLV parameter (length counts its 4-octet header)."""
    return _HH.pack(param_type, 4 + len(value)) + value


def ro_report_spec(trigger: ReportTrigger, every_n: int, selector: int) -> bytes:
    """ROReportSpec(237) with its TagReportContentSelector(238)."""
    selector_param = tlv(TAG_REPORT_CONTENT_SELECTOR, _H.pack(selector))
    return tlv(RO_REPORT_SPEC, _BH.pack(trigger, every_n) + selector_param)


def rospec(
    rospec_id: int,
    priority: int,
    start: StartTrigger,
    antennas: tuple[int, ...],
    report_spec: bytes,
) -> bytes:
    """ROSpec(177), state Disabled, Null stop: one AISpec doing Gen2 inventory until stopped."""
    boundary = tlv(
        RO_BOUNDARY_SPEC,
        tlv(ROSPEC_START_TRIGGER, _B.pack(start)) + tlv(ROSPEC_STOP_TRIGGER, _BI.pack(0, 0)),
    )
    ant = _H.pack(len(antennas)) + b"".join(_H.pack(a) for a in antennas)
    aispec = tlv(
        AISPEC,
        ant
        + tlv(AISPEC_STOP_TRIGGER, _BI.pack(0, 0))
        + tlv(INVENTORY_PARAMETER_SPEC, _HB.pack(1, PROTOCOL_EPC_C1G2)),
    )
    return tlv(ROSPEC, _IBB.pack(rospec_id, priority, 0) + boundary + aispec + report_spec)


def keepalive_spec(interval_ms: int) -> bytes:
    """KeepaliveSpec(220): periodic every `interval_ms`, or Null when 0."""
    return tlv(KEEPALIVE_SPEC, _BI.pack(1 if interval_ms else 0, interval_ms))


def reader_event_notification_spec(enabled: frozenset[NotificationEvent]) -> bytes:
    """ReaderEventNotificationSpec(244): every event type, each on or off."""
    states = b"".join(
        tlv(EVENT_NOTIFICATION_STATE, _HB.pack(ev, 0x80 if ev in enabled else 0))
        for ev in NotificationEvent
    )
    return tlv(READER_EVENT_NOTIFICATION_SPEC, states)


def events_and_reports(*, hold: bool) -> bytes:
    """EventsAndReports(226): hold reports while disconnected (until ENABLE_EVENTS_AND_REPORTS)."""
    return tlv(EVENTS_AND_REPORTS, _B.pack(0x80 if hold else 0))


def iter_tlv(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield (type, value start, parameter end) for each TLV in data[start:end]; stops at a TV."""
    pos = start
    while pos < end:
        if end - pos < 4:
            raise LLRPDecodeError(f"truncated parameter header at offset {pos}")
        word, length = _HH.unpack_from(data, pos)
        if word & 0x8000:
            return
        if length < 4 or pos + length > end:
            raise LLRPDecodeError(f"parameter {word & 0x3FF} has bad length {length}")
        yield word & 0x3FF, pos + 4, pos + length
        pos += length


def _need(start: int, size: int, end: int, what: str) -> None:
    if start + size > end:
        raise LLRPDecodeError(f"{what} too short")


def _utf8v(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    """A UTF-8 `v` field (u16 byte count, bytes); undecodable bytes are replaced."""
    _need(pos, 2, end, what)
    (n,) = _H.unpack_from(data, pos)
    _need(pos + 2, n, end, what)
    return data[pos + 2 : pos + 2 + n].decode("utf-8", "replace"), pos + 2 + n


@dataclass(frozen=True, slots=True)
class LLRPStatus:
    """The LLRPStatus of a reply; `text` is what a technician reads in the log."""

    code: int
    description: str = ""
    field_error: tuple[int, int] | None = None
    parameter_error: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        """True for M_Success."""
        return self.code == 0

    @property
    def text(self) -> str:
        """E.g. "M_FieldError (101): 'bad ID'; field 0: A_Invalid (300)"."""
        parts = [f"{status_name(self.code)} ({self.code})"]
        if self.description:
            parts[0] += f": {self.description!r}"
        if self.parameter_error is not None:
            ptype, code = self.parameter_error
            parts.append(f"parameter {ptype}: {status_name(code)} ({code})")
        if self.field_error is not None:
            num, code = self.field_error
            parts.append(f"field {num}: {status_name(code)} ({code})")
        return "; ".join(parts)


def _decode_status_param(data: bytes, start: int, end: int) -> LLRPStatus:
    _need(start, 2, end, "LLRPStatus")
    (code,) = _H.unpack_from(data, start)
    text, pos = _utf8v(data, start + 2, end, "LLRPStatus description")
    field: tuple[int, int] | None = None
    param: tuple[int, int] | None = None
    for ptype, vstart, vend in iter_tlv(data, pos, end):
        if ptype == FIELD_ERROR and vend - vstart >= 4:
            field = _HH.unpack_from(data, vstart)
        elif ptype == PARAMETER_ERROR and vend - vstart >= 4:
            param = _HH.unpack_from(data, vstart)
            # A nested FieldError says which field of that parameter was wrong.
            for sub, sstart, send in iter_tlv(data, vstart + 4, vend):
                if sub == FIELD_ERROR and send - sstart >= 4 and field is None:
                    field = _HH.unpack_from(data, sstart)
    return LLRPStatus(code, text, field, param)


def decode_status(body: bytes) -> LLRPStatus:
    """Find and decode the LLRPStatus(287) among a reply body's top-level parameters."""
    for ptype, vstart, vend in iter_tlv(body, 0, len(body)):
        if ptype == LLRP_STATUS:
            return _decode_status_param(body, vstart, vend)
    raise LLRPDecodeError("reply carries no LLRPStatus")


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """A decoded READER_EVENT_NOTIFICATION; absent events are None or empty."""

    timestamp_us: int | None = None
    uptime: bool = False
    connection_attempt: int | None = None
    connection_closed: bool = False
    antenna_events: tuple[tuple[int, int], ...] = ()
    rospec_events: tuple[tuple[int, int], ...] = ()
    exception: str | None = None
    other: int = 0

    @property
    def connection_ok(self) -> bool:
        """True when this is the ConnectionAttemptEvent(Success) a client waits for."""
        return self.connection_attempt == 0

    @property
    def connection_text(self) -> str | None:
        """The ConnectionAttemptEvent status in words, or None if there is none."""
        if self.connection_attempt is None:
            return None
        code = self.connection_attempt
        return CONNECTION_STATUS_TEXT.get(code, f"unknown connection status {code}")


def decode_reader_event(body: bytes) -> ReaderEvent:
    """Decode a READER_EVENT_NOTIFICATION body (spec §16.1.41, §16.2.7.6)."""
    for ptype, vstart, vend in iter_tlv(body, 0, len(body)):
        if ptype == READER_EVENT_NOTIFICATION_DATA:
            return _decode_event_data(body, vstart, vend)
    raise LLRPDecodeError("READER_EVENT_NOTIFICATION without ReaderEventNotificationData")


def _decode_event_data(data: bytes, start: int, end: int) -> ReaderEvent:
    ts: int | None = None
    uptime = False
    attempt: int | None = None
    closed = False
    antennas: list[tuple[int, int]] = []
    rospecs: list[tuple[int, int]] = []
    exception: str | None = None
    other = 0
    for ptype, vstart, vend in iter_tlv(data, start, end):
        if ptype in (UTC_TIMESTAMP, UPTIME):
            _need(vstart, 8, vend, "timestamp")
            (ts,) = _Q.unpack_from(data, vstart)
            uptime = ptype == UPTIME
        elif ptype == CONNECTION_ATTEMPT_EVENT:
            _need(vstart, 2, vend, "ConnectionAttemptEvent")
            (attempt,) = _H.unpack_from(data, vstart)
        elif ptype == CONNECTION_CLOSE_EVENT:
            closed = True
        elif ptype == ANTENNA_EVENT:
            _need(vstart, 3, vend, "AntennaEvent")
            antennas.append(_BH.unpack_from(data, vstart))
        elif ptype == ROSPEC_EVENT:
            _need(vstart, 5, vend, "ROSpecEvent")
            rospecs.append(_BI.unpack_from(data, vstart))
        elif ptype == READER_EXCEPTION_EVENT:
            exception, _ = _utf8v(data, vstart, vend, "ReaderExceptionEvent")
        else:
            other += 1
    return ReaderEvent(
        ts, uptime, attempt, closed, tuple(antennas), tuple(rospecs), exception, other
    )
