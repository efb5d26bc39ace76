"""ESC/POS command stripping: documented parameter lengths, cuts, chunking, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.pos_serial.escpos import CUT, EscPosText

# A receipt with commands whose parameters contain LF (0x0A) and printable bytes, so any
# guessing would leak them into the text (protocols.md §4.2 table).
RECEIPT = b"".join(
    [
        b"\x1b@",  # ESC @ init
        b"\x1da\x0a",  # GS a n (n = LF)
        b"\x1dv0\x00\x02\x00\x03\x00",
        b"\x0aAB\x0a\x0aX",  # GS v 0: raster 2 x 3 bytes
        b"\x1b*\x00\x03\x00\x0a\x0aZ",  # ESC * m=0, 3 dots, 1 byte each
        b"\x1b!\x38SHOP\x0a",  # ESC ! n print mode
        b"\x1bE\x01MILK 1L\t  0.89\x0a\x1bE\x00",  # bold on/off, a tab
        b"\x1bp\x00\x0a\x41",  # ESC p m t1 t2 drawer kick
        b"\x1dk\x04*123*\x00",  # GS k m=4: data up to NUL
        b"\x1dkI\x03\x0a\x0a\x0a",  # GS k m=73: n then n bytes
        b"\x1d(k\x03\x001\x0a\x0a",  # GS ( k pL pH fn: 3 bytes
        b"\x1d8L\x02\x00\x00\x00\x0a\x0a",  # GS 8 L p1..p4 + 2 bytes
        b"\x10\x04\x0a",  # DLE EOT n
        b"\x1c&",
        "合计".encode("gbk"),
        b"\x0a\x1c.",  # FS & Kanji on, GBK text, FS . off
        b"TOTAL  0.89\x0a",
        b"\x1dVB\x0a",  # GS V 66 n: cut with feed
        b"NEXT\x0a\x1dV\x01",  # GS V 1: cut without n
    ]
)

EXPECTED = ["SHOP", "MILK 1L   0.89", "合计", "TOTAL  0.89", CUT, "NEXT", CUT]


def test_golden_receipt_is_stripped_by_length() -> None:
    parser = EscPosText(encoding="gb18030")
    assert parser.feed(RECEIPT) == EXPECTED
    assert parser.unknown_commands == 0


def test_any_chunking_gives_the_same_result() -> None:
    for size in (1, 2, 3, 5, 7, 64):
        parser = EscPosText(encoding="gb18030")
        out = [t for i in range(0, len(RECEIPT), size) for t in parser.feed(RECEIPT[i : i + size])]
        assert out == EXPECTED, size


def test_partial_cut_and_flush() -> None:
    parser = EscPosText()
    assert parser.feed(b"A\x0aB\x1bi") == ["A", "B", CUT]
    assert parser.feed(b"tail without LF") == []
    assert parser.flush() == ["tail without LF"]
    assert parser.flush() == []


def test_unknown_command_loses_only_two_bytes() -> None:
    parser = EscPosText()
    assert parser.feed(b"\x1b\x99AB\x0a") == ["AB"]
    assert parser.unknown_commands == 1


def test_implausible_image_length_is_damage_not_data() -> None:
    parser = EscPosText(max_data=1000)
    assert parser.feed(b"\x1dv0\x00\xff\xff\xff\xffNEXT\x0a") == ["NEXT"]
    assert parser.unknown_commands == 1


def test_overlong_line_is_cut() -> None:
    parser = EscPosText(max_line=10)
    assert parser.feed(b"x" * 25) == ["x" * 10, "x" * 10]
    assert parser.overlong_lines == 2


def test_unknown_codec_is_a_config_error() -> None:
    with pytest.raises(LookupError):
        EscPosText(encoding="no-such-codec")


@given(st.binary(max_size=500))
def test_random_bytes_never_raise(data: bytes) -> None:
    for token in EscPosText(encoding="gb18030", max_data=256).feed(data):
        assert token is CUT or isinstance(token, str)


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_resyncs_after_garbage(garbage: bytes, chunk: int) -> None:
    # Any skip garbage can start is bounded by max_data; NULs end a GS k barcode too.
    parser = EscPosText(max_data=256)
    stream = garbage + b"\x00" * 270 + b"\x0aTOTAL  3.09\x0a"
    out = [t for i in range(0, len(stream), chunk) for t in parser.feed(stream[i : i + chunk])]
    assert out[-1] == "TOTAL  3.09"
