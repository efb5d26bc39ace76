"""The POS capture driver over a real pty: sale lines that match and lines that don't, the
receipt of protocols.md §4.2 as an ESC/POS stream ended by a paper cut, an unbalanced
receipt, idle time ending a receipt, a GB18030 receipt, a pole display, and unplugging."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from pydantic import ValidationError

from drivers.pos_serial import PosSerial
from drivers.pos_serial.config import PosSerialConfig
from drivers.pos_serial.simulator import CUT, ESC_INIT, LOGO, SALE_LINE_PATTERN, PosSimulator
from gateway.events import Sale
from tests.drivers.serial_rig import Bench, running

D = Decimal

# protocols.md §4.2's sample receipt, with an init, a raster logo, bold on/off and a cut.
RECEIPT_TEXT = """\
MILK 1L 3.5%                  0.89
COKE 330ML
   2 x 1.20                   2.40
  -DISCOUNT                  -0.20
SUBTOTAL                      3.09
TOTAL                         3.09
CASH                          5.00
CHANGE                        1.91
#0042  2026-03-14 10:22   Till 1
"""
RECEIPT = ESC_INIT + LOGO + b"\x1bE\x01" + RECEIPT_TEXT.encode() + b"\x1bE\x00\n\n" + CUT


def config(port: str, fmt: str, **kw: object) -> PosSerialConfig:
    fields: dict[str, object] = {"id": "till-1", "port": port, "format": fmt}
    return PosSerialConfig.model_validate({**fields, **kw})


async def test_sale_lines_and_unmatched_lines(caplog: pytest.LogCaptureFixture) -> None:
    async with PosSimulator() as till:
        bench = Bench()
        cfg = config(till.path, "line", pattern=SALE_LINE_PATTERN)
        async with running(PosSerial(cfg), bench):
            await bench.prime(lambda: till.sale_line(0, "SYNC", D(1), D(0)), Sale)
            with caplog.at_level(logging.WARNING):
                await till.send(b"SALE 17 0012345 2 0.99\r\n")
                await till.send(b"*** TRAINING MODE ***\r\nSALE x\r\n\xff\xfe\r\n")
                await till.send(b"SALE 17 0067890 1.5 12.90\r\n")
                sales = await bench.until(Sale, lambda s: s.sku == "0067890")
    sales = [s for s in sales if s.sku != "SYNC"]
    assert [(s.txn, s.sku, s.qty, s.price, s.amount, s.currency) for s in sales] == [
        ("17", "0012345", D(2), D("0.99"), D("1.98"), "EUR"),
        ("17", "0067890", D("1.5"), D("12.90"), D("19.350"), "EUR"),
    ]
    assert bench.health.counters["unmatched_lines"] == 3
    skipped = [r for r in caplog.records if "Line skipped" in r.getMessage()]
    assert len(skipped) == 1  # rate-limited: the first one only within a minute
    assert "TRAINING MODE" in skipped[0].getMessage()


async def test_receipt_from_the_reference_ends_at_the_paper_cut() -> None:
    async with PosSimulator() as till:
        bench = Bench()
        async with running(PosSerial(config(till.path, "receipt", timeout="1m")), bench):
            await bench.prime(lambda: till.receipt([("SYNC", D(1), D(1))], "1"), Sale)
            await till.send(RECEIPT[:40])  # split inside the raster logo's data
            await till.send(RECEIPT[40:])
            sales = await bench.until(Sale, lambda s: s.text == "COKE 330ML")
    sales = [s for s in sales if s.txn == "0042"]
    assert [(s.text, s.sku, s.qty, s.price, s.amount) for s in sales] == [
        ("MILK 1L 3.5%", None, D(1), D("0.89"), D("0.89")),
        ("COKE 330ML", None, D(2), D("1.20"), D("2.20")),  # the discount lowers its line
    ]
    assert not any(s.total_mismatch for s in sales)
    assert bench.health.counters["receipts"] >= 2


async def test_receipt_that_does_not_add_up_is_published_with_a_flag() -> None:
    async with PosSimulator() as till:
        bench = Bench()
        async with running(PosSerial(config(till.path, "receipt", timeout="1m")), bench):
            await bench.prime(lambda: till.receipt([("SYNC", D(1), D(1))], "1"), Sale)
            items = [("BREAD", D(1), D("2.10")), ("EGGS 10", D(3), D("0.30"))]
            await till.receipt(items, "0043", total=D("9.99"))
            sales = await bench.until(Sale, lambda s: s.text == "EGGS 10")
    sales = [s for s in sales if s.txn == "0043"]
    assert [(s.text, s.qty, s.amount, s.total_mismatch) for s in sales] == [
        ("BREAD", D(1), D("2.10"), True),
        ("EGGS 10", D(3), D("0.90"), True),
    ]
    assert bench.health.counters["total_mismatches"] == 1


async def test_idle_time_ends_a_receipt_without_a_cut() -> None:
    async with PosSimulator() as till:
        bench = Bench()
        async with running(PosSerial(config(till.path, "receipt", timeout="150ms")), bench):
            await bench.prime(lambda: till.receipt([("SYNC", D(1), D(1))], "1"), Sale)
            await till.receipt([("TEA", D(1), D("3.50"))], "0044", cut=False)
            sales = await bench.until(Sale, lambda s: s.text == "TEA")
    assert (sales[-1].txn, sales[-1].amount) == ("0044", D("3.50"))


async def test_gb18030_receipt_keeps_non_ascii_names() -> None:
    async with PosSimulator(encoding="gb18030") as till:
        bench = Bench()
        cfg = config(till.path, "receipt", encoding="gb18030", timeout="1m")
        async with running(PosSerial(cfg), bench):
            await bench.prime(lambda: till.receipt([("SYNC", D(1), D(1))], "1"), Sale)
            await till.receipt([("可口可乐 330ML", D(2), D("3.00"))], "0045")
            sales = await bench.until(Sale, lambda s: s.txn == "0045")
    assert (sales[-1].text, sales[-1].qty, sales[-1].amount) == ("可口可乐 330ML", D(2), D("6.00"))


async def test_pole_display_items_have_no_sku_and_totals_move_the_txn() -> None:
    async with PosSimulator(encoding="cp437") as till:
        bench = Bench(device_id="till-3", state={"txn": 6})
        async with running(PosSerial(config(till.path, "display", timeout="1m")), bench):
            sync = await bench.prime(lambda: till.display_item("SYNC", D(1), D(1)), Sale)
            await till.display_total(D(1))
            await till.display_item("COKE 330ML", D(2), D("1.20"))
            sales = await bench.until(Sale, lambda s: s.text == "COKE 330ML")
    coke = sales[-1]
    assert (coke.sku, coke.qty, coke.price, coke.amount) == (None, D(2), D("1.20"), D("2.40"))
    assert sync.txn == "till-3-7"
    assert coke.txn == "till-3-8"  # the total screen closed transaction 7
    assert bench.ctx.state["txn"] == 7


async def test_unplugged_till_raises_oserror() -> None:
    async with PosSimulator() as till:
        bench = Bench()
        cfg = config(till.path, "line", pattern=SALE_LINE_PATTERN)
        async with running(PosSerial(cfg), bench):
            await bench.prime(lambda: till.sale_line(1, "A", D(1), D(1)), Sale)
            till.disconnect()
            exc = await bench.ended()
    assert isinstance(exc, OSError)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"format": "line"}, "format 'line' needs a pattern"),
        ({"format": "line", "pattern": r"(?P<txn>\d+) (?P<sku>\S+)"}, "price, qty"),
        ({"format": "line", "pattern": "(unclosed"}, "not a valid regular expression"),
        ({"format": "receipt", "receipt": {"total": "TOTAL"}}, "group(s) total"),
        ({"format": "display", "encoding": "klingon"}, "unknown encoding"),
    ],
)
def test_bad_patterns_are_config_errors(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        PosSerialConfig.model_validate({"id": "t", "port": "/dev/null", **fields})
    assert message in str(info.value)
