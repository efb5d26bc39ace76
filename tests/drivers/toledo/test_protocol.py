"""Toledo continuous output: the computed frames of protocols.md §2.2, status bits, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.toledo.protocol import FrameParser, checksum, decode_frame

# The worked frames of §2.2, checksum byte included.
GROSS = bytes.fromhex("022C30203030313233343030303030300D2B")
NET_MOTION = bytes.fromhex("022C39203030303135303030303230300D24")
NET_NEGATIVE = bytes.fromhex("022C3B203030303135303030303230300D22")


def frame(swa: int, swb: int, swc: int, weight: str, tare: str | None = "000000") -> bytes:
    """A frame without checksum, from status words and digit fields."""
    return bytes([0x02, swa, swb, swc]) + weight.encode() + (tare or "").encode() + b"\r"


def test_golden_checksums() -> None:
    for golden in (GROSS, NET_MOTION, NET_NEGATIVE):
        assert checksum(golden[:17]) == golden[17]


def test_golden_frames_decode() -> None:
    parser = FrameParser(checksum=True)
    gross, net, negative = parser.feed(GROSS + NET_MOTION + NET_NEGATIVE)
    assert (gross.weight_kg, gross.tare_kg, gross.stable, gross.net) == (12.34, 0.0, True, False)
    assert (net.weight_kg, net.tare_kg, net.stable, net.net) == (1.5, 2.0, False, True)
    assert (negative.weight_kg, negative.stable) == (-1.5, False)
    assert gross.fault is None
    assert parser.discarded_bytes == 0


def test_without_checksum_and_short_variant() -> None:
    assert FrameParser().feed(GROSS[:17])[0].weight_kg == 12.34
    short = FrameParser(tare_field=False).feed(frame(0x2C, 0x30, 0x20, "001234", None))
    assert short[0].weight_kg == 12.34
    assert short[0].tare_kg == 0.0


def test_bad_checksum_is_dropped_and_the_next_frame_kept() -> None:
    parser = FrameParser(checksum=True)
    damaged = GROSS[:-1] + bytes([GROSS[-1] ^ 1])
    assert parser.feed(damaged + NET_MOTION) == [decode_frame(NET_MOTION[:17])]
    assert parser.bad_checksums == 1


def test_parity_bit_is_ignored() -> None:
    # A 7E1 line read as 8N1 delivers the parity bit as bit 7 (§2.2).
    with_parity = bytes(b | 0x80 if b.bit_count() % 2 else b for b in GROSS)
    assert FrameParser(checksum=True).feed(with_parity)[0].weight_kg == 12.34


@pytest.mark.parametrize(
    ("swa", "digits", "kg"),
    [(0x22, "001234", 1234.0), (0x23, "001234", 123.4), (0x25, "001234", 1.234),
     (0x27, "123456", 1.23456), (0x20, "001200", 1200.0)],
)  # fmt: skip
def test_decimal_point_codes(swa: int, digits: str, kg: float) -> None:
    decoded = decode_frame(frame(swa, 0x30, 0x20, digits))
    assert decoded is not None
    assert decoded.weight_kg == pytest.approx(kg)


@pytest.mark.parametrize(
    ("swb", "swc", "kg", "fault"),
    [
        (0x20, 0x20, 12.34 * 0.45359237, None),  # SWB bit 4 clear: pounds
        (0x30, 0x21, 0.01234, None),  # SWC code 1: grams
        (0x30, 0x22, 12340.0, None),  # SWC code 2: metric tons
        (0x30, 0x27, None, "cannot be converted"),  # SWC code 7: no units
        (0x34, 0x20, None, "out of range"),
        (0x70, 0x20, 12.34, "power-up"),
    ],
)
def test_units_and_faults(swb: int, swc: int, kg: float | None, fault: str | None) -> None:
    decoded = decode_frame(frame(0x2C, swb, swc, "001234"))
    assert decoded is not None
    assert decoded.weight_kg == (pytest.approx(kg) if kg is not None else None)
    if fault is None:
        assert decoded.fault is None
    else:
        assert decoded.fault is not None
        assert fault in decoded.fault
        assert not decoded.stable or kg is not None


def test_leading_spaces_and_bad_digits() -> None:
    assert decode_frame(frame(0x2C, 0x30, 0x20, "  1234")) is not None
    assert decode_frame(frame(0x2C, 0x30, 0x20, "00x234")) is None
    assert decode_frame(b"\x02,0 0012\r") is None


def test_scale_bouncing_between_motion_and_stable() -> None:
    frames = b"".join(
        frame(0x2C, 0x38 if i % 2 else 0x30, 0x20, f"{1000 + i:06d}") for i in range(9)
    )
    parser = FrameParser()
    decoded = [f for i in range(len(frames)) for f in parser.feed(frames[i : i + 1])]
    assert [f.stable for f in decoded] == [i % 2 == 0 for i in range(9)]
    assert decoded[-1].weight_kg == pytest.approx(10.08)


def test_truncated_frame_and_garbage_then_resync() -> None:
    parser = FrameParser(checksum=True)
    assert parser.feed(b"\xff\x00garbage" + GROSS[:9]) == []
    out = parser.feed(NET_MOTION + b"\x13")
    assert [f.raw for f in out] == [NET_MOTION[:17]]
    assert parser.discarded_bytes > 0


@given(st.binary(max_size=400), st.booleans(), st.booleans())
def test_random_bytes_never_raise(data: bytes, tare: bool, check: bool) -> None:
    parser = FrameParser(tare_field=tare, checksum=check)
    for decoded in parser.feed(data):
        assert decoded.raw[0] == 0x02


@given(st.binary(max_size=400), st.integers(min_value=1, max_value=30))
def test_resyncs_on_the_next_valid_frame(garbage: bytes, chunk: int) -> None:
    parser = FrameParser(checksum=True)
    stream = garbage + GROSS
    out = [f for i in range(0, len(stream), chunk) for f in parser.feed(stream[i : i + chunk])]
    assert out[-1].raw == GROSS[:17]
    assert out[-1].weight_kg == 12.34
