"""Serial UHF protocols (R2000 0xA0, M100 0xBB): golden frames, checksums, fuzz, resync."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.uhf_serial import m100, r2000
from drivers.uhf_serial.m100 import M100Parser
from drivers.uhf_serial.protocol import FrameParser, Reply, RoundEnd, UhfError, UhfTag
from drivers.uhf_serial.r2000 import R2000Parser


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


EPC = "e2003098881900722140369e"
# Worked frames from protocols.md §1.3 (address 0x01).
R_TAG = h("A0 13 01 89 30 30 00 E2 00 30 98 88 19 00 72 21 40 36 9E 4B 26")
R_END = h("A0 0A 01 89 00 00 64 00 00 00 05 63")
R_ERR = h("A0 04 01 89 22 B0")
R_BUFFERED = h("A0 19 01 90 00 01 10 30 00 E2 00 30 98 88 19 00 72 21 40 36 9E 4D D4 4B 30 07 E0")
R_STREAM = R_TAG + R_END + R_ERR + R_BUFFERED
R_EXPECTED = [
    UhfTag(EPC, 1, 0x4B - 129, 0x4B, 0x3000, 12, 1),
    RoundEnd(1, 100, 5),
    UhfError(0x89, 0x22, "antenna missing"),
    UhfTag(EPC, 1, 0x4B - 129, 0x4B, 0x3000, 12, 7),
]
# Worked frames from protocols.md §1.4.
M_TAG = h("BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E")
M_NO_TAG = h("BB 01 FF 00 01 15 16 7E")
M_STOPPED = h("BB 01 28 00 01 00 2A 7E")
M_STREAM = M_TAG + M_NO_TAG + M_STOPPED
M_EXPECTED = [
    UhfTag("30751feb705c5904e3d50d70", 1, -55, 0xC9, 0x3400, None, 1),
    UhfError(0xFF, 0x15, "no tag (inventory found nothing)", no_tag=True),
    Reply(0x28, b"\x00"),
]


class TestR2000:
    @pytest.mark.parametrize(
        ("frame", "built"),
        [
            ("A0 03 01 70 EC", r2000.build_frame(1, r2000.CMD_RESET)),
            ("A0 03 01 72 EA", r2000.build_frame(1, r2000.CMD_GET_FIRMWARE)),
            ("A0 04 01 74 00 E7", r2000.build_set_work_antenna(1, 1)),
            ("A0 04 01 89 FF D3", r2000.build_realtime_inventory(1)),
            ("A0 04 FF 89 FF D5", R2000Parser().inventory_command()),
        ],
    )
    def test_requests_byte_for_byte(self, frame: str, built: bytes) -> None:
        assert built == h(frame)

    def test_checksum_makes_the_sum_zero(self) -> None:
        for frame in (R_TAG, R_END, R_ERR, R_BUFFERED):
            assert r2000.checksum(frame[:-1]) == frame[-1]
            assert sum(frame) & 0xFF == 0

    def test_golden_replies(self) -> None:
        parser = R2000Parser(1)
        assert parser.feed(R_STREAM) == R_EXPECTED
        assert (parser.stats.frames, parser.stats.garbage_bytes, parser.stats.bad_frames) == (
            4,
            0,
            0,
        )

    def test_byte_by_byte(self) -> None:
        parser = R2000Parser(1)
        assert [f for b in R_STREAM for f in parser.feed(bytes([b]))] == R_EXPECTED

    def test_bad_checksum_and_truncated_frame_are_skipped(self) -> None:
        corrupt = R_TAG[:-1] + bytes([R_TAG[-1] ^ 1])
        parser = R2000Parser(1)
        assert parser.feed(corrupt + R_TAG[:9] + R_END) == [R_EXPECTED[1]]
        assert parser.stats.bad_frames >= 2
        assert parser.stats.garbage_bytes > 0

    def test_eight_antenna_firmware_uses_the_rssi_top_bit(self) -> None:
        body = h("A0 13 01 89 32 30 00") + bytes.fromhex(EPC) + h("CB")
        frame = body + bytes([r2000.checksum(body)])
        (tag,) = R2000Parser(1, eight_antennas=True).feed(frame)
        assert isinstance(tag, UhfTag)
        assert (tag.antenna, tag.rssi, tag.rssi_raw) == (3 + 4, 0x4B - 129, 0xCB)
        (four_port,) = R2000Parser(1).feed(frame)
        assert isinstance(four_port, UhfTag)
        assert four_port.antenna == 3

    def test_status_replies(self) -> None:
        ok = r2000.build_frame(1, 0x74, b"\x10")
        no_tag = r2000.build_frame(1, 0x89, b"\x36")
        firmware = r2000.build_frame(1, 0x72, b"\x01\x22")
        assert R2000Parser(1).feed(ok + no_tag + firmware) == [
            Reply(0x74, b"\x10"),
            UhfError(0x89, 0x36, "no tag", no_tag=True),
            Reply(0x72, b"\x01\x22"),
        ]

    def test_error_text(self) -> None:
        assert r2000.error_text(0x38) == "buffer empty"
        assert r2000.error_text(0x45) == "parameter error 0x45"
        assert r2000.error_text(0x52) == "RF or regulation error 0x52"
        assert r2000.error_text(0xEE) == "unknown error 0xee"

    def test_build_frame_rejects_oversized_data(self) -> None:
        with pytest.raises(ValueError, match="out of range"):
            r2000.build_frame(1, 0x89, bytes(253))


class TestM100:
    @pytest.mark.parametrize(
        ("frame", "built"),
        [
            ("BB 00 22 00 00 22 7E", m100.build_single_poll()),
            ("BB 00 27 00 03 22 27 10 83 7E", m100.build_multi_poll(10000)),
            ("BB 00 28 00 00 28 7E", m100.build_stop_multi_poll()),
            ("BB 00 27 00 03 22 27 10 83 7E", M100Parser().inventory_command()),
        ],
    )
    def test_requests_byte_for_byte(self, frame: str, built: bytes) -> None:
        assert built == h(frame)

    def test_checksum_excludes_the_header(self) -> None:
        for frame in (M_TAG, M_NO_TAG, M_STOPPED):
            assert m100.checksum(frame[1:-2]) == frame[-2]

    def test_golden_replies(self) -> None:
        parser = M100Parser()
        assert parser.feed(M_STREAM) == M_EXPECTED
        assert parser.stats.frames == 3

    def test_byte_by_byte(self) -> None:
        parser = M100Parser()
        assert [f for b in M_STREAM for f in parser.feed(bytes([b]))] == M_EXPECTED

    def test_corrupt_end_byte_huge_length_and_bad_type_are_skipped(self) -> None:
        bad_end = M_TAG[:-1] + b"\x00"
        huge = h("BB 01 22 FF FF")
        bad_type = h("BB 07 22 00 00 22 7E")
        parser = M100Parser()
        assert parser.feed(bad_end + huge + bad_type + M_NO_TAG) == [M_EXPECTED[1]]
        assert parser.stats.bad_frames >= 3

    def test_error_text(self) -> None:
        assert m100.error_text(0x17) == "invalid command frame"
        assert m100.error_text(0xB3) == "tag error 0x3 during write"
        assert m100.error_text(0x99) == "unknown error 0x99"

    def test_multi_poll_count_range(self) -> None:
        with pytest.raises(ValueError, match="0-65535"):
            m100.build_multi_poll(70000)


PARSERS: dict[str, tuple[type[R2000Parser | M100Parser], bytes, list[object], int]] = {
    "r2000": (R2000Parser, R_STREAM, list(R_EXPECTED), r2000.HEAD),
    "m100": (M100Parser, M_STREAM, list(M_EXPECTED), m100.HEAD),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=200)
@given(chunks=st.lists(st.binary(max_size=80), max_size=10))
def test_fuzz_random_bytes_never_raise(name: str, chunks: list[bytes]) -> None:
    parser: FrameParser = PARSERS[name][0]()
    for chunk in chunks:
        for frame in parser.feed(chunk):
            assert isinstance(frame, UhfTag | RoundEnd | UhfError | Reply)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=200)
@given(garbage=st.binary(max_size=60), trailing=st.binary(max_size=20), cut=st.integers(0, 200))
def test_fuzz_resync_after_garbage(name: str, garbage: bytes, trailing: bytes, cut: int) -> None:
    # Garbage without the head byte cannot start a false frame, so every real frame after
    # it must come out, however the bytes are split.
    cls, stream, expected, head = PARSERS[name]
    clean = bytes(b for b in garbage if b != head)
    tail = bytes(b for b in trailing if b != head)
    wire = clean + stream + tail
    cut = min(cut, len(wire))
    parser: FrameParser = cls()
    frames = parser.feed(wire[:cut]) + parser.feed(wire[cut:])
    assert frames == expected
    assert parser.stats.garbage_bytes == len(clean) + len(tail)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=200)
@given(garbage=st.binary(max_size=300))
def test_fuzz_resync_after_arbitrary_garbage(name: str, garbage: bytes) -> None:
    # Garbage may hold head bytes that start false frames; 600 zero bytes are longer than
    # any frame either protocol waits for, so the last real frames still come out (a false
    # frame passing its checksum by chance could hide an earlier one).
    cls, stream, expected, _ = PARSERS[name]
    parser: FrameParser = cls()
    frames = parser.feed(garbage + stream + bytes(600) + stream)
    assert frames[-len(expected) :] == expected


def test_r2000_noise_with_a_long_length_does_not_hold_the_next_reply() -> None:
    # Line noise `A0 F0` announces a 242-byte frame; the real reply right behind it must come
    # out at once, not after 242 more bytes (several inventory rounds) have arrived.
    reply = r2000.build_frame(1, r2000.CMD_SET_WORK_ANTENNA, b"\x10")
    parser = R2000Parser(1)
    (frame,) = parser.feed(b"\xa0\xf0\x01" + reply)
    assert isinstance(frame, Reply)
    assert parser.stats.garbage_bytes >= 3


def test_m100_noise_with_a_long_length_does_not_hold_the_next_reply() -> None:
    # `BB 01 FF 01 F4` announces a 507-byte frame (500 parameter bytes); the "no tag" reply
    # right behind it must come out at once. The scan is shared with the R2000 parser.
    parser = M100Parser()
    (frame,) = parser.feed(b"\xbb\x01\xff\x01\xf4" + M_NO_TAG)
    assert isinstance(frame, UhfError)
    assert frame.no_tag
    assert parser.stats.garbage_bytes == 5
    assert parser.stats.bad_frames == 1
