"""LLRP message layer, IO-free: framing, the client's requests, and decoders for replies.

EPCglobal LLRP 1.0.1 (spec §15, "Binary encoding"): every message is a 10-octet header
(3 reserved bits, 3 version bits, 10 type bits, u32 length of the whole message, u32
message ID) followed by parameters. The asyncio client feeds socket bytes to a
`MessageReader`, builds requests with the `build_*` functions and decodes replies with
`decode_status`, `decode_reader_event` and `decode_ro_access_report`. No IO happens here,
so everything is golden-tested and fuzzed directly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from drivers.llrp.params import (
    DEFAULT_SELECTOR,
    LLRPDecodeError,
    LLRPProtocolError,
    LLRPStatus,
    NotificationEvent,
    ReaderEvent,
    ReportTrigger,
    StartTrigger,
    decode_reader_event,
    decode_status,
    events_and_reports,
    keepalive_spec,
    reader_event_notification_spec,
    ro_report_spec,
    rospec,
)
from drivers.llrp.report import RoAccessReport, TagReport, decode_ro_access_report

__all__ = [
    "DEFAULT_SELECTOR",
    "LLRPDecodeError",
    "LLRPFramingError",
    "LLRPProtocolError",
    "LLRPStatus",
    "Message",
    "MessageReader",
    "MessageType",
    "NotificationEvent",
    "ROSpecSettings",
    "ReaderEvent",
    "ReportTrigger",
    "RoAccessReport",
    "StartTrigger",
    "TagReport",
    "build_add_rospec",
    "build_close_connection",
    "build_delete_accessspec",
    "build_delete_rospec",
    "build_enable_events_and_reports",
    "build_enable_rospec",
    "build_get_reader_capabilities",
    "build_keepalive_ack",
    "build_set_reader_config",
    "build_start_rospec",
    "build_stop_rospec",
    "decode_message_status",
    "decode_reader_event",
    "decode_ro_access_report",
    "decode_status",
    "encode_message",
    "response_type",
]

HEADER_LENGTH = 10
VERSION_1_0_1 = 1
DEFAULT_MAX_LENGTH = 4 * 1024 * 1024
"""Largest message accepted: a reader flushing a full report buffer stays far below it,
while a garbage length (up to 4 GiB) would otherwise make us buffer forever."""

_HEADER = struct.Struct(">HII")
_U32 = struct.Struct(">I")


class MessageType(IntEnum):
    """LLRP message type numbers (spec §16 / protocols.md §1.1)."""

    GET_READER_CAPABILITIES = 1
    GET_READER_CONFIG = 2
    SET_READER_CONFIG = 3
    CLOSE_CONNECTION_RESPONSE = 4
    GET_READER_CAPABILITIES_RESPONSE = 11
    GET_READER_CONFIG_RESPONSE = 12
    SET_READER_CONFIG_RESPONSE = 13
    CLOSE_CONNECTION = 14
    ADD_ROSPEC = 20
    DELETE_ROSPEC = 21
    START_ROSPEC = 22
    STOP_ROSPEC = 23
    ENABLE_ROSPEC = 24
    DISABLE_ROSPEC = 25
    GET_ROSPECS = 26
    ADD_ROSPEC_RESPONSE = 30
    DELETE_ROSPEC_RESPONSE = 31
    START_ROSPEC_RESPONSE = 32
    STOP_ROSPEC_RESPONSE = 33
    ENABLE_ROSPEC_RESPONSE = 34
    DISABLE_ROSPEC_RESPONSE = 35
    GET_ROSPECS_RESPONSE = 36
    DELETE_ACCESSSPEC = 41
    DELETE_ACCESSSPEC_RESPONSE = 51
    GET_REPORT = 60
    RO_ACCESS_REPORT = 61
    KEEPALIVE = 62
    READER_EVENT_NOTIFICATION = 63
    ENABLE_EVENTS_AND_REPORTS = 64
    KEEPALIVE_ACK = 72
    ERROR_MESSAGE = 100
    CUSTOM_MESSAGE = 1023


class LLRPFramingError(LLRPProtocolError):
    """The byte stream is not LLRP (bad version or length): drop the connection."""


@dataclass(frozen=True, slots=True)
class Message:
    """One complete LLRP message: type, ID, version and the body after the header."""

    type: int
    id: int
    body: bytes
    version: int = VERSION_1_0_1


def encode_message(msg_type: int, msg_id: int, body: bytes = b"", version: int = 1) -> bytes:
    """Frame `body` as one LLRP message (spec §15.1: the length counts the header too)."""
    if not 0 <= msg_type < 1024 or not 0 <= msg_id < 1 << 32 or not 0 < version < 8:
        raise ValueError("message type, ID or version out of range")
    return _HEADER.pack((version << 10) | msg_type, HEADER_LENGTH + len(body), msg_id) + body


class MessageReader:
    """Turn a TCP byte stream into complete `Message`s, whatever the segmenting.

    `feed()` returns every message completed by the new bytes. A header with a version
    other than the accepted ones, a length below 10 or above `max_length` raises
    `LLRPFramingError`: the stream has lost its framing and cannot be resynchronised
    (LLRP has no sync marker), so the client reconnects. The reader stays failed after
    that; make a new one for the new connection.
    """

    def __init__(
        self, *, max_length: int = DEFAULT_MAX_LENGTH, versions: frozenset[int] = frozenset({1})
    ) -> None:
        self._buf = bytearray()
        self._max_length = max_length
        self._versions = versions
        self._error: LLRPFramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        """Add received bytes; return the messages they complete, in order."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        out: list[Message] = []
        pos = 0
        end = len(buf)
        while end - pos >= HEADER_LENGTH:
            word, length, msg_id = _HEADER.unpack_from(buf, pos)
            # The 3 reserved bits are ignored, as spec §15.1 asks of receivers.
            version = (word >> 10) & 0x7
            if version not in self._versions:
                self._error = LLRPFramingError(f"unsupported LLRP version {version} in header")
            elif length < HEADER_LENGTH or length > self._max_length:
                self._error = LLRPFramingError(f"bad LLRP message length {length}")
            if self._error is not None:
                buf.clear()
                raise self._error
            if end - pos < length:
                break
            body = bytes(buf[pos + HEADER_LENGTH : pos + length])
            out.append(Message(word & 0x3FF, msg_id, body, version))
            pos += length
        if pos:
            del buf[:pos]
        return out


@dataclass(frozen=True, slots=True)
class ROSpecSettings:
    """What ADD_ROSPEC asks for: one AISpec, Gen2 inventory, a report every N tags.

    `antennas` (0 = all, spec §16.2.4.2) and `report_every` (N; 0 = unlimited) map to
    AISpec and ROReportSpec; `start` IMMEDIATE runs on ENABLE_ROSPEC, NULL waits for
    START_ROSPEC. `selector` is the TagReportContentSelector flag word (spec §16.2.7.1).
    """

    rospec_id: int = 1
    antennas: tuple[int, ...] = (0,)
    start: StartTrigger = StartTrigger.IMMEDIATE
    report_trigger: ReportTrigger = ReportTrigger.N_TAGS_OR_END_OF_ROSPEC
    report_every: int = 1
    selector: int = DEFAULT_SELECTOR
    priority: int = 0


def build_get_reader_capabilities(msg_id: int, requested: int = 0) -> bytes:
    """GET_READER_CAPABILITIES: `requested` 0 all, 1 general, 2 LLRP, 3 regulatory, 4 air."""
    return encode_message(MessageType.GET_READER_CAPABILITIES, msg_id, bytes([requested]))


def build_set_reader_config(
    msg_id: int,
    *,
    reset: bool = False,
    events: frozenset[NotificationEvent] | None = None,
    report: ROSpecSettings | None = None,
    keepalive_ms: int | None = None,
    hold_events_on_reconnect: bool | None = None,
) -> bytes:
    """SET_READER_CONFIG; each optional setting is sent only when given.

    Parameters go in the order spec §16.1.33 lists them: ReaderEventNotificationSpec,
    ROReportSpec, KeepaliveSpec, EventsAndReports. `events` enables the listed event
    types and disables every other one; `keepalive_ms` 0 turns keepalives off.
    """
    body = bytearray([0x80 if reset else 0])
    if events is not None:
        body += reader_event_notification_spec(events)
    if report is not None:
        body += ro_report_spec(report.report_trigger, report.report_every, report.selector)
    if keepalive_ms is not None:
        body += keepalive_spec(keepalive_ms)
    if hold_events_on_reconnect is not None:
        body += events_and_reports(hold=hold_events_on_reconnect)
    return encode_message(MessageType.SET_READER_CONFIG, msg_id, bytes(body))


def build_add_rospec(msg_id: int, settings: ROSpecSettings) -> bytes:
    """ADD_ROSPEC with one ROSpec in state Disabled, as spec §16.1.3 requires."""
    body = rospec(
        settings.rospec_id,
        settings.priority,
        settings.start,
        settings.antennas,
        ro_report_spec(settings.report_trigger, settings.report_every, settings.selector),
    )
    return encode_message(MessageType.ADD_ROSPEC, msg_id, body)


def _with_u32(msg_type: MessageType, msg_id: int, value: int) -> bytes:
    return encode_message(msg_type, msg_id, _U32.pack(value))


def build_enable_rospec(msg_id: int, rospec_id: int) -> bytes:
    """ENABLE_ROSPEC: Disabled → Inactive (or straight to Active with an Immediate trigger)."""
    return _with_u32(MessageType.ENABLE_ROSPEC, msg_id, rospec_id)


def build_start_rospec(msg_id: int, rospec_id: int) -> bytes:
    """START_ROSPEC: Inactive → Active (needed when the start trigger is Null)."""
    return _with_u32(MessageType.START_ROSPEC, msg_id, rospec_id)


def build_stop_rospec(msg_id: int, rospec_id: int) -> bytes:
    """STOP_ROSPEC: Active → Inactive."""
    return _with_u32(MessageType.STOP_ROSPEC, msg_id, rospec_id)


def build_delete_rospec(msg_id: int, rospec_id: int = 0) -> bytes:
    """DELETE_ROSPEC; ID 0 deletes every ROSpec (a clean slate after reconnecting)."""
    return _with_u32(MessageType.DELETE_ROSPEC, msg_id, rospec_id)


def build_delete_accessspec(msg_id: int, accessspec_id: int = 0) -> bytes:
    """DELETE_ACCESSSPEC; ID 0 deletes every AccessSpec."""
    return _with_u32(MessageType.DELETE_ACCESSSPEC, msg_id, accessspec_id)


def build_keepalive_ack(msg_id: int) -> bytes:
    """KEEPALIVE_ACK; pass the KEEPALIVE's ID (spec's request/response correlation)."""
    return encode_message(MessageType.KEEPALIVE_ACK, msg_id)


def build_close_connection(msg_id: int) -> bytes:
    """CLOSE_CONNECTION: the reader answers with CLOSE_CONNECTION_RESPONSE, then closes."""
    return encode_message(MessageType.CLOSE_CONNECTION, msg_id)


def build_enable_events_and_reports(msg_id: int) -> bytes:
    """ENABLE_EVENTS_AND_REPORTS: release reports held while no client was connected."""
    return encode_message(MessageType.ENABLE_EVENTS_AND_REPORTS, msg_id)


def response_type(request_type: int) -> int:
    """The reply type a request expects: type + 10, except CLOSE_CONNECTION 14 → 4."""
    if request_type == MessageType.CLOSE_CONNECTION:
        return int(MessageType.CLOSE_CONNECTION_RESPONSE)
    return request_type + 10


def decode_message_status(message: Message) -> LLRPStatus:
    """The LLRPStatus of a *_RESPONSE or ERROR_MESSAGE (raises LLRPDecodeError if absent)."""
    if message.type == MessageType.CUSTOM_MESSAGE:
        raise LLRPDecodeError("a CUSTOM_MESSAGE reply is vendor-defined")
    return decode_status(message.body)
