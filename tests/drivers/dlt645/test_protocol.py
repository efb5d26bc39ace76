"""DL/T 645-2007 codec: golden frames, replies, identifiers, and the streaming parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.dlt645.identifiers import BY_NAME, IDENTIFIERS, BcdError, lookup, tariff_energy
from drivers.dlt645.parser import FrameParser
from drivers.dlt645.protocol import (
    AddressReply,
    DataReply,
    ErrorReply,
    Frame,
    FrameError,
    Function,
    address_reply,
    data_reply,
    decode_frame,
    encode_frame,
    error_messages,
    error_reply,
    parse_reply,
    read_address_request,
    read_request,
)

ADDRESS = "000012345678"


def hexb(text: str) -> bytes:
    return bytes.fromhex(text)


# Worked frames from protocols.md §3.2 (computed, cross-checked with the dlt645 decoder).
READ_ENERGY = hexb("FE FE FE FE 68 78 56 34 12 00 00 68 11 04 33 33 34 33 C6 16")
ENERGY_REPLY = hexb("FE FE FE FE 68 78 56 34 12 00 00 68 91 08 33 33 34 33 AB 89 67 45 2A 16")
READ_VOLTAGE = hexb("FE FE FE FE 68 78 56 34 12 00 00 68 11 04 33 34 34 35 C9 16")
VOLTAGE_REPLY = hexb("FE FE FE FE 68 78 56 34 12 00 00 68 91 06 33 34 34 35 34 55 D4 16")
CURRENT_REPLY = hexb("FE FE FE FE 68 78 56 34 12 00 00 68 91 07 33 34 35 35 67 45 33 2C 16")
POWER_REPLY = hexb("FE FE FE FE 68 78 56 34 12 00 00 68 91 07 33 33 36 35 33 48 B3 7B 16")
ABNORMAL_REPLY = hexb("FE FE FE FE 68 78 56 34 12 00 00 68 D1 01 35 EB 16")
READ_ADDRESS = hexb("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16")
GOLDEN = [
    READ_ENERGY,
    ENERGY_REPLY,
    READ_VOLTAGE,
    VOLTAGE_REPLY,
    CURRENT_REPLY,
    POWER_REPLY,
    ABNORMAL_REPLY,
    READ_ADDRESS,
]


# --- requests, byte for byte -----------------------------------------------------------


def test_read_requests_golden() -> None:
    assert read_request(ADDRESS, 0x00010000) == READ_ENERGY
    assert read_request(ADDRESS, BY_NAME["voltage_a"].di) == READ_VOLTAGE
    assert read_address_request() == READ_ADDRESS
    assert read_request(ADDRESS, 0x00010000, preamble=False) == READ_ENERGY[4:]


@pytest.mark.parametrize("wire", GOLDEN)
def test_golden_frames_round_trip(wire: bytes) -> None:
    frame = decode_frame(wire)
    assert encode_frame(frame) == wire
    assert decode_frame(wire[4:]) == frame  # the preamble is optional on receipt


# --- replies, both directions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "name", "value"),
    [
        (ENERGY_REPLY, "import_active_energy", 123456.78),
        (VOLTAGE_REPLY, "voltage_a", 220.1),
        (CURRENT_REPLY, "current_a", 1.234),
        (POWER_REPLY, "active_power", -0.15),
    ],
)
def test_reply_values_golden(wire: bytes, name: str, value: float) -> None:
    reply = parse_reply(decode_frame(wire))
    assert isinstance(reply, DataReply)
    assert reply.address == ADDRESS
    entry = BY_NAME[name]
    assert reply.di == entry.di
    assert entry.decode(reply.value) == value
    # And back: a simulator building the same reply sends the same bytes.
    assert encode_frame(data_reply(ADDRESS, entry.di, entry.encode(value))) == wire


def test_abnormal_reply_golden() -> None:
    frame = decode_frame(ABNORMAL_REPLY)
    assert frame.is_reply
    assert frame.is_abnormal
    reply = parse_reply(frame)
    assert reply == ErrorReply(ADDRESS, Function.READ_DATA, 0x02)
    assert isinstance(reply, ErrorReply)
    assert reply.messages == ["no requested data (unknown data identifier)"]
    assert encode_frame(error_reply(ADDRESS, Function.READ_DATA, 0x02)) == ABNORMAL_REPLY


def test_error_messages() -> None:
    assert error_messages(0x05) == ["other error", "password wrong or not authorised"]
    assert error_messages(0x80) == ["unknown error 0x80"]
    assert len(error_messages(0x7F)) == 7


def test_address_reply() -> None:
    wire = encode_frame(address_reply(ADDRESS))
    reply = parse_reply(decode_frame(wire))
    assert reply == AddressReply(ADDRESS)
    assert wire[4:11] == hexb("68 78 56 34 12 00 00")


def test_follow_up_flag() -> None:
    frame = decode_frame(encode_frame(data_reply(ADDRESS, 0x00010000, b"\0" * 4, follow_up=True)))
    assert frame.control == 0xB1
    reply = parse_reply(frame)
    assert isinstance(reply, DataReply)
    assert reply.follow_up


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (Frame(ADDRESS, 0x11, b"\0\0\0\0"), "request, not a reply"),
        (Frame(ADDRESS, 0xD1, b""), "not one"),
        (Frame(ADDRESS, 0x91, b"\0\0"), "shorter than its data identifier"),
        (Frame(ADDRESS, 0x93, b"\0"), "6-byte address"),
        (Frame(ADDRESS, 0x94, b""), "not handled"),
    ],
)
def test_parse_reply_rejects(frame: Frame, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        parse_reply(frame)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (READ_ENERGY[:-1], "length byte"),
        (READ_ENERGY[:-1] + b"\x17", "not 0x16"),
        (READ_ENERGY[:-2] + b"\x00\x16", "checksum"),
        (READ_ENERGY.replace(b"\x68\x11", b"\x69\x11"), "start bytes"),
        (b"\xfe\x68\x16", "too short"),
    ],
)
def test_decode_frame_rejects(wire: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode_frame(wire)


@pytest.mark.parametrize("address", ["12345678", "00001234567X", "AAAAAAAAAAAB"])
def test_bad_addresses(address: str) -> None:
    with pytest.raises(FrameError, match="address"):
        read_request(address, 0)


# --- identifiers ----------------------------------------------------------------------------


def test_identifier_table() -> None:
    assert lookup(0x02800002) is BY_NAME["frequency"]
    assert lookup(0x12345678) is None
    assert BY_NAME["voltage_c"].di == 0x02010300
    assert BY_NAME["current_b"].signed
    assert BY_NAME["import_active_energy_t2"].di == 0x00010200
    assert BY_NAME["import_active_energy"].format == "XXXXXX.XX"
    assert BY_NAME["power_factor"].format == "X.XXX"
    assert tariff_energy(63, export=True).di == 0x00023F00
    assert all(
        entry.counter == entry.name.endswith(("energy", "_t1", "_t2", "_t3", "_t4"))
        for entry in IDENTIFIERS.values()
    )
    with pytest.raises(ValueError, match="1-63"):
        tariff_energy(64)


def test_bcd_errors() -> None:
    voltage = BY_NAME["voltage_a"]
    with pytest.raises(BcdError, match="not BCD"):
        voltage.decode(b"\x0a\x01")
    with pytest.raises(BcdError, match="value bytes"):
        voltage.decode(b"\x01")
    with pytest.raises(ValueError, match="unsigned"):
        voltage.encode(-1)
    with pytest.raises(ValueError, match="does not fit"):
        BY_NAME["active_power"].encode(80.0)  # the sign bit leaves 0-79.9999 kW


@pytest.mark.parametrize("name", sorted(BY_NAME))
@given(fraction=st.floats(0, 1))
def test_identifier_round_trip(name: str, fraction: float) -> None:
    entry = BY_NAME[name]
    top = (8 * 10 ** (2 * entry.length - 1) if entry.signed else 10 ** (2 * entry.length)) - 1
    value = round(fraction * top) / 10**entry.decimals
    for signed_value in (value, -value) if entry.signed else (value,):
        assert entry.decode(entry.encode(signed_value)) == signed_value


# --- the streaming parser -------------------------------------------------------------------

BODIES = [wire[4:] for wire in GOLDEN]


def test_parser_splits_and_glues() -> None:
    parser = FrameParser()
    stream = b"".join(GOLDEN)
    frames = [f for i in range(len(stream)) for f in parser.feed(stream[i : i + 1])]
    assert frames == [decode_frame(w) for w in GOLDEN]
    assert (parser.frames, parser.discarded, parser.bad_checksums) == (len(GOLDEN), 0, 0)
    assert parser.wake_up_bytes == 4 * len(GOLDEN)
    assert parser.pending == 0


def test_parser_resynchronises_after_a_bad_checksum() -> None:
    parser = FrameParser()
    corrupt = ENERGY_REPLY[:-2] + bytes([ENERGY_REPLY[-2] ^ 0xFF, 0x16])
    frames = parser.feed(b"\x00\x68garbage" + corrupt + VOLTAGE_REPLY)
    assert frames == [decode_frame(VOLTAGE_REPLY)]
    assert parser.bad_checksums == 1
    assert parser.discarded == 9 + len(corrupt) - 4


def test_parser_does_not_wait_behind_a_false_start() -> None:
    # `68 .. 68` in garbage with a large length byte: without look-ahead the real reply
    # would stay buffered until 200 more bytes arrived.
    false_start = hexb("68 01 02 03 04 05 06 68 91 C8")
    parser = FrameParser()
    assert parser.feed(false_start + VOLTAGE_REPLY) == [decode_frame(VOLTAGE_REPLY)]
    assert parser.pending == 0
    assert parser.discarded == len(false_start)


def test_parser_reset_drops_a_partial_frame() -> None:
    parser = FrameParser()
    assert parser.feed(ENERGY_REPLY[:12]) == []
    assert parser.pending == 8
    parser.reset()
    assert parser.pending == 0
    assert parser.feed(ENERGY_REPLY) == [decode_frame(ENERGY_REPLY)]


@settings(max_examples=300)
@given(st.binary(max_size=600), st.lists(st.integers(1, 64), max_size=20))
def test_parser_never_raises_and_accounts_for_every_byte(data: bytes, cuts: list[int]) -> None:
    parser = FrameParser()
    framed = pos = 0
    for cut in [*cuts, len(data)]:
        for frame in parser.feed(data[pos : pos + cut]):
            framed += 12 + len(frame.data)
        pos += cut
    assert parser.pending <= 267
    assert framed + parser.discarded + parser.wake_up_bytes + parser.pending == len(data)


garbage = st.binary(max_size=40).map(lambda b: b.replace(b"\x68", b"\x00"))


@settings(max_examples=200, derandomize=True)
@given(
    st.lists(st.tuples(garbage, st.sampled_from(BODIES), st.booleans()), max_size=8),
    st.lists(st.integers(1, 50), max_size=30),
)
def test_parser_recovers_frames_between_garbage(
    pieces: list[tuple[bytes, bytes, bool]], cuts: list[int]
) -> None:
    # Garbage may not contain 0x68 here (a random 68 .. 68 could start a frame that
    # overlaps the real one); `truncate` cuts a copy of a frame short before the frame,
    # which the parser must throw away without losing the whole frame behind it.
    stream = b""
    expected: list[Frame] = []
    for junk, body, truncate in pieces:
        if truncate:
            stream += body[: len(body) // 2]
        stream += junk + b"\xfe\xfe" + body
        expected.append(decode_frame(body))
    parser = FrameParser()
    frames: list[Frame] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        frames += parser.feed(stream[pos : pos + cut])
        pos += cut
    assert frames == expected
    assert parser.pending == 0
