"""POS line patterns and the receipt state machine (contract.md "POS capture")."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.pos_serial.escpos import EscPosText
from drivers.pos_serial.parsing import (
    LineFormat,
    PatternError,
    Receipt,
    ReceiptFormat,
    ReceiptParser,
    Reject,
    SaleLine,
    parse_money,
)

LINE = r"^(?P<txn>\d+);(?P<sku>\w+);(?P<qty>[\d.]+);(?P<price>[\d.,]+)(?:;(?P<amount>[\d.,]+))?$"

# protocols.md §4.2's sample receipt, cut at the end.
SAMPLE = (
    "MILK 1L 3.5%                  0.89\n"
    "COKE 330ML\n"
    "   2 x 1.20                   2.40\n"
    "  -DISCOUNT                  -0.20\n"
    "SUBTOTAL                      3.09\n"
    "TOTAL                         3.09\n"
    "CASH                          5.00\n"
    "CHANGE                        1.91\n"
    "#0042  2026-03-14 10:22   Till 1\n"
)


def receipts(parser: ReceiptParser, stream: bytes, encoding: str = "utf-8") -> list[Receipt]:
    """Run a byte stream through the ESC/POS stripper and the receipt parser."""
    out = parser.feed(EscPosText(encoding=encoding).feed(stream))
    return [r for r in out if isinstance(r, Receipt)]


def test_line_format_parses_money_as_decimal() -> None:
    fmt = LineFormat(LINE)
    sale = fmt.parse("0042;4006381333931;2;1.20")
    assert sale == SaleLine("0042", "4006381333931", None, Decimal(2), Decimal("1.20"),
                            Decimal("2.40"))  # fmt: skip
    with_amount = fmt.parse("7;X1;1.5;2.00;2.99")
    assert isinstance(with_amount, SaleLine)
    assert with_amount.amount == Decimal("2.99")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("hello world", "does not match"),
        ("", "does not match"),
        ("1;A;2;1,2,3.x", "does not match"),
        ("1;A;1..2;1.00", "not a number"),
    ],
)
def test_lines_that_do_not_match_are_rejects(line: str, reason: str) -> None:
    result = LineFormat(LINE).parse(line)
    assert isinstance(result, Reject)
    assert reason in result.reason
    assert result.text == line


def test_line_pattern_errors_name_the_groups() -> None:
    with pytest.raises(PatternError, match=r"lacks the named group.*price.*qty"):
        LineFormat(r"(?P<txn>\d+) (?P<sku>\w+)")
    with pytest.raises(PatternError, match=r"unknown group.*prise"):
        LineFormat(r"(?P<txn>.)(?P<sku>.)(?P<qty>.)(?P<price>.)(?P<prise>.)")
    with pytest.raises(PatternError, match="not a valid regular expression"):
        LineFormat(r"(?P<txn>")


@pytest.mark.parametrize(
    ("text", "sep", "value"),
    [("1,234.50", ".", "1234.50"), ("0.20-", ".", "-0.20"), ("-3", ".", "-3"),
     ("1.234,50", ",", "1234.50"), ("12,9", ",", "12.9"), ("abc", ".", None),
     ("1" * 19, ".", None), ("", ".", None)],
)  # fmt: skip
def test_parse_money(text: str, sep: str, value: str | None) -> None:
    assert parse_money(text, sep) == (Decimal(value) if value is not None else None)


def test_sample_receipt() -> None:
    (receipt,) = receipts(ReceiptParser(), SAMPLE.encode() + b"\x1dVA\x03")
    assert (receipt.txn, receipt.total, receipt.ts) == ("0042", Decimal("3.09"), "2026-03-14 10:22")
    assert not receipt.total_mismatch
    milk, coke = receipt.lines
    assert (milk.name, milk.qty, milk.price, milk.amount) == (
        "MILK 1L 3.5%", Decimal(1), Decimal("0.89"), Decimal("0.89"))  # fmt: skip
    # The discount line lowers the line total of the item above it.
    assert (coke.name, coke.qty, coke.price, coke.amount) == (
        "COKE 330ML", Decimal(2), Decimal("1.20"), Decimal("2.20"))  # fmt: skip
    assert all(line.txn == "0042" for line in receipt.lines)


def test_receipt_that_does_not_add_up_is_kept_and_marked() -> None:
    stream = SAMPLE.replace("TOTAL                         3.09", "TOTAL  9.99").encode()
    (receipt,) = receipts(ReceiptParser(), stream + b"\x1dV\x00")
    assert receipt.total_mismatch
    assert receipt.total == Decimal("9.99")
    assert all(line.total_mismatch for line in receipt.lines)


def test_gbk_receipt() -> None:
    fmt = ReceiptFormat(
        item=r"^(?P<name>\S.*?)\s+(?P<qty>\d+)\s+(?P<price>\d+\.\d\d)\s+(?P<amount>\d+\.\d\d)$",
        quantity=None,
        discount=None,
        total=r"^合计[:\uff1a]?\s*(?P<total>\d+\.\d\d)$",
        txn=r"^单号[:\uff1a]\s*(?P<txn>\w+)",
        ignore=r"^(?:欢迎光临|现金|找零)",
    )
    text = (
        "欢迎光临\n"
        "可口可乐330ML  2  3.50  7.00\n"
        "康师傅方便面  1  4.50  4.50\n"
        "合计: 11.50\n"
        "现金: 20.00\n"
        "单号: A0042\n"
    )
    (receipt,) = receipts(ReceiptParser(fmt), text.encode("gbk") + b"\x1dV\x01", "gb18030")
    assert [(s.name, s.qty, s.amount) for s in receipt.lines] == [
        ("可口可乐330ML", Decimal(2), Decimal("7.00")),
        ("康师傅方便面", Decimal(1), Decimal("4.50")),
    ]
    assert (receipt.txn, receipt.total_mismatch) == ("A0042", False)


def test_end_line_ends_the_receipt_without_a_cut() -> None:
    parser = ReceiptParser(ReceiptFormat(end=r"^#\d+"))
    out = [r for line in SAMPLE.splitlines() for r in parser.feed_line(line)]
    assert [type(r) for r in out] == [Receipt]


def test_unmatched_lines_and_orphans_are_rejects() -> None:
    parser = ReceiptParser()
    out = parser.feed_line("SUPERMARKET ZHANG")
    out += parser.feed_line("MILK 1L                       0.89")
    out += parser.feed_line("   2 x 0.89                   1.78")  # refines the milk line
    out += parser.feed_line("   3 x 1.00                   3.00")  # nothing left to refine
    out += parser.feed_line("BREAD")
    out += parser.end()
    rejects = [r for r in out if isinstance(r, Reject)]
    assert [r.text for r in rejects] == ["SUPERMARKET ZHANG", "   3 x 1.00                   3.00",
                                         "BREAD"]  # fmt: skip
    (receipt,) = [r for r in out if isinstance(r, Receipt)]
    assert (receipt.lines[0].qty, receipt.lines[0].price) == (Decimal(2), Decimal("0.89"))
    assert receipt.txn is None
    assert not receipt.total_mismatch  # no printed total: nothing to compare


def test_discount_without_item_and_empty_receipt() -> None:
    parser = ReceiptParser()
    assert parser.feed_line("  -DISCOUNT                  -0.20") == [
        Reject("  -DISCOUNT                  -0.20", "discount without an item before it")
    ]
    assert parser.end() == []


def test_receipt_pattern_errors() -> None:
    with pytest.raises(PatternError, match="total pattern"):
        ReceiptParser(ReceiptFormat(total=r"TOTAL (\d+)"))
    with pytest.raises(PatternError, match="item pattern"):
        ReceiptParser(ReceiptFormat(item=r"(?P<name>.*)"))


def test_max_lines_bounds_an_endless_receipt() -> None:
    parser = ReceiptParser(max_lines=3)
    out = [r for _ in range(2) for r in parser.feed_line("MILK 1L  0.89")]
    assert out == []
    out = parser.feed_line("MILK 1L  0.89")
    assert [len(r.lines) for r in out if isinstance(r, Receipt)] == [3]


@given(st.text(max_size=200))
def test_line_format_never_raises(line: str) -> None:
    assert isinstance(LineFormat(LINE).parse(line), SaleLine | Reject)


@given(st.lists(st.text(max_size=60), max_size=30))
def test_receipt_parser_never_raises_and_resyncs(lines: list[str]) -> None:
    parser = ReceiptParser()
    for line in lines:
        parser.feed_line(line)
    parser.end()
    out = [r for line in SAMPLE.splitlines() for r in parser.feed_line(line)] + parser.end()
    (receipt,) = [r for r in out if isinstance(r, Receipt)]
    assert receipt.total == Decimal("3.09")
    assert not receipt.total_mismatch
