"""LLRP codec: golden bytes from protocols.md §1.1 both ways, stream framing, fuzzing."""

from __future__ import annotations

import contextlib
import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.llrp.protocol import (
    LLRPDecodeError,
    LLRPFramingError,
    LLRPProtocolError,
    Message,
    MessageReader,
    MessageType,
    NotificationEvent,
    ROSpecSettings,
    StartTrigger,
    TagReport,
    build_add_rospec,
    build_close_connection,
    build_delete_accessspec,
    build_delete_rospec,
    build_enable_events_and_reports,
    build_enable_rospec,
    build_get_reader_capabilities,
    build_keepalive_ack,
    build_set_reader_config,
    build_start_rospec,
    build_stop_rospec,
    decode_message_status,
    decode_reader_event,
    decode_ro_access_report,
    decode_status,
    encode_message,
    response_type,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", "").replace("\n", ""))


# Worked bytes from protocols.md §1.1 ("Worked bytes").
KEEPALIVE = h("04 3E 00 00 00 0A 00 00 00 07")
KEEPALIVE_ACK = h("04 48 00 00 00 0A 00 00 00 07")
REN_CONNECTED = h(
    "04 3F 00 00 00 20 00 00 00 00 00 F6 00 16 00 80 00 0C 00 06 0A 24 18 1E 40 00"
    " 01 00 00 06 00 00"
)
ENABLE_ROSPEC = h("04 18 00 00 00 0E 00 00 00 03 00 00 00 01")
START_ROSPEC = h("04 16 00 00 00 0E 00 00 00 04 00 00 00 01")
ENABLE_ROSPEC_RESPONSE = h("04 22 00 00 00 12 00 00 00 03 01 1F 00 08 00 00 00 00")
ADD_ROSPEC = h(
    """04 14 00 00 00 4B 00 00 00 02
    00 B1 00 41 00 00 00 01 00 00
    00 B2 00 12 00 B3 00 05 01 00 B6 00 09 00 00 00 00 00
    00 B7 00 18 00 01 00 00 00 B8 00 09 00 00 00 00 00 00 BA 00 07 00 01 01
    00 ED 00 0D 02 00 01 00 EE 00 06 16 80"""
)
TAG_ENTRY = h("00 F0 00 22 8D E2 00 30 98 88 19 00 72 21 40 36 9E 81 00 01 86 CC")
TAG_ENTRY += h("82 00 06 0A 24 18 1E 40 00 88 00 03")
RO_ACCESS_REPORT = h("04 3D 00 00 00 2C 00 00 12 34") + TAG_ENTRY
GOLDEN_TAG = TagReport("e2003098881900722140369e", 1, -52, 1_700_000_000_000_000, 3, uptime=False)

STREAM = REN_CONNECTED + ENABLE_ROSPEC_RESPONSE + RO_ACCESS_REPORT + KEEPALIVE


class TestBuilders:
    def test_worked_examples_byte_for_byte(self) -> None:
        assert build_keepalive_ack(7) == KEEPALIVE_ACK
        assert build_enable_rospec(3, 1) == ENABLE_ROSPEC
        assert build_start_rospec(4, 1) == START_ROSPEC
        assert build_add_rospec(2, ROSpecSettings()) == ADD_ROSPEC
        assert len(ADD_ROSPEC) == 75

    def test_simple_requests(self) -> None:
        # Hand-assembled from the header layout: (1 << 10 | type), length, ID, body.
        assert build_get_reader_capabilities(1) == h("04 01 00 00 00 0B 00 00 00 01 00")
        assert build_get_reader_capabilities(9, 2) == h("04 01 00 00 00 0B 00 00 00 09 02")
        assert build_delete_rospec(5) == h("04 15 00 00 00 0E 00 00 00 05 00 00 00 00")
        assert build_stop_rospec(6, 1) == h("04 17 00 00 00 0E 00 00 00 06 00 00 00 01")
        assert build_delete_accessspec(8) == h("04 29 00 00 00 0E 00 00 00 08 00 00 00 00")
        assert build_close_connection(0x0A0B0C0D) == h("04 0E 00 00 00 0A 0A 0B 0C 0D")
        assert build_enable_events_and_reports(11) == h("04 40 00 00 00 0A 00 00 00 0B")

    def test_add_rospec_null_start_two_antennas_every_ten(self) -> None:
        settings_ = ROSpecSettings(
            rospec_id=7, antennas=(1, 2), start=StartTrigger.NULL, report_every=10
        )
        expected = h(
            """04 14 00 00 00 4D 00 00 00 02
            00 B1 00 43 00 00 00 07 00 00
            00 B2 00 12 00 B3 00 05 00 00 B6 00 09 00 00 00 00 00
            00 B7 00 1A 00 02 00 01 00 02 00 B8 00 09 00 00 00 00 00 00 BA 00 07 00 01 01
            00 ED 00 0D 02 00 0A 00 EE 00 06 16 80"""
        )
        assert build_add_rospec(2, settings_) == expected

    def test_set_reader_config_everything(self) -> None:
        events = frozenset(
            {
                NotificationEvent.ROSPEC,
                NotificationEvent.READER_EXCEPTION,
                NotificationEvent.ANTENNA,
            }
        )
        on = {2, 4, 8}
        states = "".join(f"00F50007 00{t:02X} {'80' if t in on else '00'}" for t in range(9))
        body = (
            "80"  # ResetToFactoryDefaults
            "00F4 0043"
            f"{states}"
            "00ED 000D 02 0001 00EE 0006 1680"  # ROReportSpec, N = 1, selector 0x1680
            "00DC 0009 01 00002710"  # KeepaliveSpec periodic 10 000 ms
            "00E2 0005 80"  # EventsAndReports: hold
        )
        expected = h(f"04 03 {10 + len(h(body)):08X} 00000006") + h(body)
        built = build_set_reader_config(
            6,
            reset=True,
            events=events,
            report=ROSpecSettings(),
            keepalive_ms=10_000,
            hold_events_on_reconnect=True,
        )
        assert built == expected

    def test_set_reader_config_minimal_and_keepalive_off(self) -> None:
        assert build_set_reader_config(1) == h("04 03 00 00 00 0B 00 00 00 01 00")
        assert build_set_reader_config(1, keepalive_ms=0) == h(
            "04 03 00 00 00 14 00 00 00 01 00 00 DC 00 09 00 00 00 00 00"
        )

    def test_encode_message_rejects_out_of_range(self) -> None:
        with pytest.raises(ValueError, match="out of range"):
            encode_message(1024, 1)
        with pytest.raises(ValueError, match="out of range"):
            encode_message(1, 1 << 32)

    def test_response_types(self) -> None:
        assert response_type(MessageType.ADD_ROSPEC) == MessageType.ADD_ROSPEC_RESPONSE
        assert response_type(MessageType.CLOSE_CONNECTION) == MessageType.CLOSE_CONNECTION_RESPONSE
        assert response_type(MessageType.GET_READER_CAPABILITIES) == 11


class TestDecoders:
    def test_keepalive(self) -> None:
        (msg,) = MessageReader().feed(KEEPALIVE)
        assert msg == Message(MessageType.KEEPALIVE, 7, b"")
        assert build_keepalive_ack(msg.id) == KEEPALIVE_ACK

    def test_connection_attempt_success(self) -> None:
        (msg,) = MessageReader().feed(REN_CONNECTED)
        assert (msg.type, msg.id) == (MessageType.READER_EVENT_NOTIFICATION, 0)
        event = decode_reader_event(msg.body)
        assert event.connection_ok
        assert event.connection_text == "success"
        assert event.timestamp_us == 1_700_000_000_000_000
        assert not event.uptime

    def test_connection_attempt_refused_and_other_events(self) -> None:
        data = (
            h("00 81 00 0C 00 00 00 00 00 00 03 E8")  # Uptime 1000 µs
            + h("01 00 00 06 00 02")  # ConnectionAttemptEvent: client connection exists
            + h("00 FF 00 07 00 00 02")  # AntennaEvent: antenna 2 disconnected
            + h("00 F9 00 0D 01 00 00 00 05 00 00 00 00")  # ROSpecEvent: end of ROSpec 5
            + h("00 FC 00 08 00 02 6F 6B")  # ReaderExceptionEvent "ok"
            + h("01 01 00 04")  # ConnectionCloseEvent
            + h("00 F8 00 04")  # GPIEvent (not decoded; counted)
        )
        body = struct.pack(">HH", 246, 4 + len(data)) + data
        event = decode_reader_event(body)
        assert not event.connection_ok
        assert event.connection_text == "failed: a client-initiated connection already exists"
        assert (event.timestamp_us, event.uptime) == (1000, True)
        assert event.antenna_events == ((0, 2),)
        assert event.rospec_events == ((1, 5),)
        assert event.exception == "ok"
        assert event.connection_closed
        assert event.other == 1

    def test_reader_event_without_data_is_a_decode_error(self) -> None:
        with pytest.raises(LLRPDecodeError):
            decode_reader_event(h("00 80 00 0C 00 00 00 00 00 00 00 01"))

    def test_success_status(self) -> None:
        (msg,) = MessageReader().feed(ENABLE_ROSPEC_RESPONSE)
        assert (msg.type, msg.id) == (MessageType.ENABLE_ROSPEC_RESPONSE, 3)
        status = decode_message_status(msg)
        assert status.ok
        assert status.text == "M_Success (0)"

    def test_field_error_status_is_readable(self) -> None:
        # LLRPStatus 101 "dup" with FieldError(field 0, A_Invalid) - what the simulator
        # sends for a duplicate ROSpec ID (protocols.md §1.1).
        body = h("01 1F 00 13 00 65 00 03 64 75 70 01 20 00 08 00 00 01 2C")
        status = decode_status(body)
        assert not status.ok
        assert status.field_error == (0, 300)
        assert status.text == "M_FieldError (101): 'dup'; field 0: A_Invalid (300)"

    def test_parameter_error_with_nested_field_error(self) -> None:
        inner = h("01 21 00 10 00 B1 00 C9 01 20 00 08 00 03 01 2D")
        body = h("01 1F 00 18 00 64 00 00") + inner
        status = decode_status(body)
        assert status.parameter_error == (177, 201)
        assert status.field_error == (3, 301)
        assert status.text == (
            "M_ParameterError (100); parameter 177: P_FieldError (201); field 3: A_OutOfRange (301)"
        )

    def test_unknown_status_code_and_missing_status(self) -> None:
        assert decode_status(h("01 1F 00 08 03 E7 00 00")).text == "unknown status 999 (999)"
        with pytest.raises(LLRPDecodeError, match="no LLRPStatus"):
            decode_status(b"")
        with pytest.raises(LLRPDecodeError):
            decode_message_status(Message(MessageType.CUSTOM_MESSAGE, 1, b""))

    def test_ro_access_report_golden(self) -> None:
        (msg,) = MessageReader().feed(RO_ACCESS_REPORT)
        assert (msg.type, msg.id) == (MessageType.RO_ACCESS_REPORT, 0x1234)
        report = decode_ro_access_report(msg.body)
        assert report.tags == [GOLDEN_TAG]
        assert report.skipped == 0

    def test_general_layout_epcdata_uptime_and_vendor_params(self) -> None:
        tag = (
            h("00 F1 00 16 00 80")  # EPCData, 128 bits
            + bytes(range(16))
            + h("81 00 04 86 05 83 00 00 00 00 00 00 00 2A")  # ant 4, RSSI +5, uptime 42
            + h("87 00 03 8C 30 00 8B AB CD")  # ChannelIndex, C1G2PC, C1G2CRC (ignored)
            + h("03 FF 00 0E 00 00 65 1A 00 00 00 01 AA BB")  # Impinj Custom: skipped
        )
        custom = h("03 FF 00 0C 00 00 65 1A 00 00 00 02")  # top-level vendor parameter
        body = struct.pack(">HH", 240, 4 + len(tag)) + tag + custom + TAG_ENTRY
        report = decode_ro_access_report(body)
        assert report.tags == [
            TagReport(bytes(range(16)).hex(), 4, 5, 42, 1, uptime=True),
            GOLDEN_TAG,
        ]
        assert report.skipped == 2

    def test_unknown_tv_stops_the_entry_and_missing_epc_is_skipped(self) -> None:
        unknown_tv = h("8D") + bytes(12) + h("81 00 02 FF 01 02 03")
        no_epc = h("81 00 01 86 C0")
        body = (
            struct.pack(">HH", 240, 4 + len(unknown_tv))
            + unknown_tv
            + struct.pack(">HH", 240, 4 + len(no_epc))
            + no_epc
        )
        report = decode_ro_access_report(body)
        assert report.tags == [TagReport("00" * 12, 2, None, None, 1, uptime=False)]
        assert report.skipped == 2

    @pytest.mark.parametrize(
        "body",
        [
            TAG_ENTRY[:-1],  # truncated entry
            h("00 F0 00 02"),  # length below the header
            h("00 F0"),  # truncated header
            h("8D 00"),  # TV at report level
            h("00 F0 00 08 81 00 01 86"),  # TV overruns its entry
            h("00 F0 00 09 00 F1 00 10 00"),  # TLV overruns its entry
        ],
    )
    def test_malformed_reports_raise_decode_error(self, body: bytes) -> None:
        with pytest.raises(LLRPDecodeError):
            decode_ro_access_report(body)

    @given(
        epc=st.binary(min_size=12, max_size=12),
        antenna=st.integers(0, 0xFFFF),
        rssi=st.integers(-128, 127),
        ts=st.integers(0, (1 << 64) - 1),
        count=st.integers(0, 0xFFFF),
    )
    def test_fast_and_general_paths_agree(
        self, epc: bytes, antenna: int, rssi: int, ts: int, count: int
    ) -> None:
        fields = struct.pack(
            ">B12sBHBbBQBH", 0x8D, epc, 0x81, antenna, 0x86, rssi, 0x82, ts, 0x88, count
        )
        fast = struct.pack(">HH", 240, 4 + len(fields)) + fields
        slow_fields = fields + h("87 00 01")  # one more TV forces the general walk
        slow = struct.pack(">HH", 240, 4 + len(slow_fields)) + slow_fields
        expected = TagReport(epc.hex(), antenna, rssi, ts, count, uptime=False)
        assert decode_ro_access_report(fast).tags == [expected]
        assert decode_ro_access_report(slow).tags == [expected]


class TestMessageReader:
    def test_merged_stream(self) -> None:
        msgs = MessageReader().feed(STREAM)
        assert [m.type for m in msgs] == [63, 34, 61, 62]

    def test_byte_by_byte(self) -> None:
        reader = MessageReader()
        msgs = [m for b in STREAM for m in reader.feed(bytes([b]))]
        assert [m.id for m in msgs] == [0, 3, 0x1234, 7]
        assert reader.buffered == 0

    @given(st.lists(st.integers(0, len(STREAM)), max_size=12))
    def test_any_segmenting_gives_the_same_messages(self, cuts: list[int]) -> None:
        points = [0, *sorted(cuts), len(STREAM)]
        reader = MessageReader()
        msgs = [m for a, b in itertools.pairwise(points) for m in reader.feed(STREAM[a:b])]
        assert msgs == MessageReader().feed(STREAM)

    def test_version_2_accepted_only_when_asked(self) -> None:
        v2 = encode_message(62, 1, version=2)
        assert MessageReader(versions=frozenset({1, 2})).feed(v2)[0].version == 2
        with pytest.raises(LLRPFramingError, match="version 2"):
            MessageReader().feed(v2)

    @pytest.mark.parametrize(
        ("data", "match"),
        [
            (h("04 3E 00 00 00 09 00 00 00 07"), "length 9"),
            (h("04 3E 00 10 00 00 00 00 00 07"), "length 1048576"),
            (h("1C 3E 00 00 00 0A 00 00 00 07"), "version 7"),
        ],
    )
    def test_bad_header_is_a_framing_error_and_stays_failed(self, data: bytes, match: str) -> None:
        reader = MessageReader(max_length=65536)
        assert reader.feed(KEEPALIVE)  # good messages before the bad one still come out
        with pytest.raises(LLRPFramingError, match=match):
            reader.feed(data)
        with pytest.raises(LLRPFramingError):
            reader.feed(KEEPALIVE)

    def test_reserved_bits_are_ignored(self) -> None:
        (msg,) = MessageReader().feed(bytes([0xE4]) + KEEPALIVE[1:])
        assert (msg.type, msg.version) == (62, 1)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_fuzz_reader_raises_only_protocol_errors(chunks: list[bytes]) -> None:
    reader = MessageReader(max_length=4096)
    try:
        for chunk in chunks:
            for msg in reader.feed(chunk):
                assert 10 + len(msg.body) <= 4096
    except LLRPFramingError:
        pass


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_fuzz_body_decoders_raise_only_decode_errors(body: bytes) -> None:
    for decode in (decode_ro_access_report, decode_status, decode_reader_event):
        with contextlib.suppress(LLRPDecodeError):
            decode(body)


@settings(max_examples=500)
@given(st.data())
def test_fuzz_mutated_reports(data: st.DataObject) -> None:
    body = bytearray(RO_ACCESS_REPORT[10:] + TAG_ENTRY)
    for _ in range(data.draw(st.integers(1, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    try:
        report = decode_ro_access_report(bytes(body))
    except LLRPProtocolError:
        return
    assert all(isinstance(t.epc, str) for t in report.tags)
