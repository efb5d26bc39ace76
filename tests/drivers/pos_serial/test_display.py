"""Pole display parsing: CD5220 and Epson-mode streams from protocols.md §4.1."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from drivers.pos_serial.display import DisplayItem, DisplayTotal, PoleDisplayParser
from drivers.pos_serial.parsing import Reject

# §4.1's per-item update in CD5220 string mode.
CD5220_ITEM = b"\x1bQACOKE 330ML          \r\x1bQB2 @ 1.20        2.40\r"
# §4.1's Epson-mode update: clear, name, cursor to column 15 of row 2, line total.
EPSON_ITEM = b"\x0cCOKE 330ML\x1f\x24\x0f\x02 2.40"


def test_cd5220_item() -> None:
    parser = PoleDisplayParser()
    assert parser.feed(b"\x1b@\x0c" + CD5220_ITEM) == [
        DisplayItem("COKE 330ML", Decimal("1.20"), Decimal(2), Decimal("2.40"))
    ]
    # Clearing the screen that was already read emits nothing twice.
    assert parser.feed(b"\x0c") == []


def test_epson_item_is_read_when_the_next_screen_starts() -> None:
    parser = PoleDisplayParser()
    assert parser.feed(EPSON_ITEM) == []
    assert parser.feed(b"\x0cMILK 1L\x1f\x24\x10\x02 0.89") == [
        DisplayItem("COKE 330ML", Decimal("2.40"), Decimal(1), Decimal("2.40"))
    ]
    assert parser.flush() == [DisplayItem("MILK 1L", Decimal("0.89"), Decimal(1), Decimal("0.89"))]


def test_one_line_layout_and_chunking() -> None:
    stream = b"\x0cBREAD           1.50\x0c"
    parser = PoleDisplayParser()
    out = [item for byte in stream for item in parser.feed(bytes([byte]))]
    assert out == [DisplayItem("BREAD", Decimal("1.50"), Decimal(1), Decimal("1.50"))]


def test_total_and_payment_screens() -> None:
    parser = PoleDisplayParser()
    out = parser.feed(b"\x1bQATOTAL     12.90\r\x1bQB\r\x0cCASH / CHANGE\x0c")
    assert out == [DisplayTotal("TOTAL     12.90", Decimal("12.90"))]


def test_screens_without_a_price_are_rejects() -> None:
    parser = PoleDisplayParser()
    out = parser.feed(b"\x1bQAHELLO\r\x1bQB\r")
    assert out == [Reject("HELLO", "no price on the display")]


def test_vertical_scroll_and_unknown_commands() -> None:
    parser = PoleDisplayParser()
    parser.feed(b"\x1f\x02\x0cOLD\r\nWATER 0.5L\r\n")
    assert parser.feed(b"0.60\x0c") == [
        DisplayItem("WATER 0.5L", Decimal("0.60"), Decimal(1), Decimal("0.60"))
    ]
    parser.feed(b"\x1b\x99")
    assert parser.unknown_commands == 1


def test_scrolling_greeting_is_not_an_item() -> None:
    assert PoleDisplayParser().feed(b"\x1bQDWELCOME TO OUR SHOP\r\x0c") == []


@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    parser = PoleDisplayParser(encoding="gb18030")
    parser.feed(data)
    parser.flush()


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=20))
def test_resyncs_after_garbage(garbage: bytes, chunk: int) -> None:
    parser = PoleDisplayParser()
    # CRs end any half-received command (string mode ends on CR, others take ≤ 2 bytes).
    stream = garbage + b"\r\r\r\x0c" + CD5220_ITEM
    out = [r for i in range(0, len(stream), chunk) for r in parser.feed(stream[i : i + chunk])]
    assert out[-1] == DisplayItem("COKE 330ML", Decimal("1.20"), Decimal(2), Decimal("2.40"))
