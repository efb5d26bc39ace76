"""Modbus framing: golden frames from the Eastron vendor example (protocols.md §3.1), fuzzing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.protocol import (
    CrcError,
    FrameError,
    MbapReceiver,
    ModbusExceptionError,
    RtuReceiver,
    crc16,
    mbap_frame,
    parse_reply,
    read_pdu,
    rtu_frame,
    write_coil_pdu,
    write_registers_pdu,
)

H = bytes.fromhex


@pytest.mark.parametrize(
    ("unit", "address", "wire"),
    [
        (1, 0x0000, "01 04 00 00 00 02 71 CB"),  # read voltage (vendor example)
        (1, 0x0048, "01 04 00 48 00 02 F1 DD"),  # read import kWh
        (1, 0x0156, "01 04 01 56 00 02 90 27"),  # read total kWh
    ],
)
def test_read_requests_match_the_reference(unit: int, address: int, wire: str) -> None:
    assert rtu_frame(unit, read_pdu(4, address, 2)) == H(wire)


@pytest.mark.parametrize(
    ("wire", "value"),
    [("01 04 04 43 66 33 34 1B 38", 230.2), ("01 04 04 44 9A 50 00 F3 5B", 1234.5)],
)
def test_replies_decode_to_the_reference_values(wire: str, value: float) -> None:
    receiver = RtuReceiver(1, 4)
    raw = H(wire)
    assert receiver.feed(raw[:4]) is None  # split across reads, as on a serial line
    pdu = receiver.feed(raw[4:])
    assert pdu is not None
    registers = parse_reply(4, 2, pdu)
    (number,) = struct.unpack(">f", struct.pack(">HH", *registers))
    assert number == pytest.approx(value, abs=1e-4)


def test_noise_before_the_reply_is_skipped_and_a_bad_crc_raises() -> None:
    receiver = RtuReceiver(1, 4)
    assert receiver.feed(H("00 FF 07")) is None
    assert receiver.feed(H("01 04 04 43 66 33 34 1B 38")) is not None
    assert receiver.skipped == 3
    with pytest.raises(CrcError):
        RtuReceiver(1, 4).feed(H("01 04 04 43 66 33 34 1B 39"))


def test_exception_replies() -> None:
    pdu = RtuReceiver(1, 4).feed(rtu_frame(1, b"\x84\x02"))
    assert pdu == b"\x84\x02"
    with pytest.raises(ModbusExceptionError, match="illegal data address"):
        parse_reply(4, 2, pdu)


def test_crc_of_the_standard_example() -> None:
    # Modbus over Serial Line v1.02 §6.2.2 example: 02 07 -> CRC 0x1241 (sent 41 12).
    assert crc16(H("02 07")) == 0x1241


def test_tcp_framing_drops_stale_transactions() -> None:
    assert mbap_frame(1, 1, read_pdu(3, 0, 1)) == H("00 01 00 00 00 06 01 03 00 00 00 01")
    receiver = MbapReceiver(7, 1)
    stale = mbap_frame(6, 1, b"\x03\x02\x00\x01")
    fresh = mbap_frame(7, 1, b"\x03\x02\x00\x2a")
    assert receiver.feed(stale + fresh[:5]) is None
    assert receiver.feed(fresh[5:]) == b"\x03\x02\x00\x2a"
    assert receiver.stale == 1
    with pytest.raises(FrameError):
        MbapReceiver(1, 1).feed(H("00 01 00 05 00 06 01"))


def test_write_pdus() -> None:
    assert write_registers_pdu(1, [3]) == H("06 00 01 00 03")
    assert write_registers_pdu(1, [10, 258]) == H("10 00 01 00 02 04 00 0A 01 02")
    assert write_coil_pdu(172, value=True) == H("05 00 AC FF 00")  # spec §6.5 example


def test_coil_bits_are_lsb_first() -> None:
    # Application Protocol §6.1 example: coils 20-38, status CD 6B 05.
    bits = parse_reply(1, 19, H("01 03 CD 6B 05"))
    assert bits[:8] == [1, 0, 1, 1, 0, 0, 1, 1]
    assert bits[16:] == [1, 0, 1]


@given(st.binary(max_size=300), st.integers(1, 4), st.integers(1, 125))
def test_fuzzed_bytes_never_raise_anything_but_frame_errors(
    data: bytes, function: int, count: int
) -> None:
    for receiver in (RtuReceiver(1, function), MbapReceiver(1, 1)):
        for cut in (len(data) // 2, len(data)):
            try:
                pdu = receiver.feed(data[:cut] if cut < len(data) else data[len(data) // 2 :])
                if pdu is not None:
                    parse_reply(function, count, pdu)
            except (FrameError, ModbusExceptionError):
                pass
