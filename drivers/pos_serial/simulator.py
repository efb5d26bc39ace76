"""A till on a pseudo-terminal, for tests and demos (protocols.md §4, "How to simulate POS
streams").

It writes what a real till sends: sale lines (`sale_line`), ESC/POS receipts with an init,
print-mode commands, a raster logo and a paper cut (`receipt`), or CD5220 pole display
screens (`display_item`, `display_total`). `ring(...)` rings up random sales as sale lines
every `period`, for the demo. Fault switches: `garbage` (bytes before the next write),
`truncate_next` (the next write loses its second half), `silent` (writes nothing), and
`disconnect()` (the line goes away).
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import TYPE_CHECKING, Self

from gateway.pty import PtyPair, PtySimulator

if TYPE_CHECKING:
    from collections.abc import Sequence

ESC_INIT = b"\x1b@"
BOLD_ON, BOLD_OFF = b"\x1bE\x01", b"\x1bE\x00"
CUT = b"\x1dVB\x00"  # GS V 66 0: feed and partial cut (function B, one parameter more)
LOGO = b"\x1dv0\x00\x02\x00\x02\x00" + bytes([0x0A, 0x1B, 0x1D, 0x56])  # 2x2 raster with LF
CD5220_UPPER, CD5220_LOWER = b"\x1bQA", b"\x1bQB"
SALE_LINE_PATTERN = r"^SALE (?P<txn>\d+) (?P<sku>\S+) (?P<qty>\d+(?:\.\d+)?) (?P<price>\d+\.\d\d)$"
"""The pattern that reads `sale_line` output (the demo's `pattern:`)."""


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class PosSimulator(PtySimulator):
    """A till behind a pty: open `path` as the driver's port."""

    def __init__(self, encoding: str = "utf-8") -> None:
        """Text is written in `encoding` (the device's `encoding` setting)."""
        self.pty = PtyPair()
        self.encoding = encoding
        self.silent = False
        self.garbage = b""
        self.truncate_next = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        return self

    async def send(self, data: bytes) -> None:
        """Write raw bytes, with the fault switches applied."""
        if self.silent:
            return
        if self.truncate_next:
            data, self.truncate_next = data[: len(data) // 2], False
        if self.garbage:
            data, self.garbage = self.garbage + data, b""
        await self.pty.write(data)

    async def sale_line(self, txn: int, sku: str, qty: Decimal, price: Decimal) -> None:
        """One sale per line, as `SALE_LINE_PATTERN` reads it."""
        await self.send(f"SALE {txn} {sku} {qty} {_money(price)}\r\n".encode(self.encoding))

    async def receipt(
        self,
        items: Sequence[tuple[str, Decimal, Decimal]],
        txn: str,
        *,
        total: Decimal | None = None,
        cut: bool = True,
    ) -> None:
        """An ESC/POS receipt in protocols.md §4.2's layout: (name, qty, unit price) items."""
        width = 34
        out = bytearray(ESC_INIT + LOGO + BOLD_ON + b"STOREGW MARKET\n" + BOLD_OFF)
        amount_sum = Decimal(0)
        for name, qty, price in items:
            amount = qty * price
            amount_sum += amount
            if qty == 1:
                text = f"{name:<{width - 8}}{_money(amount):>8}\n"
            else:
                text = f"{name}\n   {qty} x {_money(price)}{_money(amount):>{width - 12}}\n"
            out += text.encode(self.encoding)
        shown = amount_sum if total is None else total
        out += f"{'SUBTOTAL':<{width - 8}}{_money(shown):>8}\n".encode(self.encoding)
        out += f"{'TOTAL':<{width - 8}}{_money(shown):>8}\n".encode(self.encoding)
        out += f"#{txn}  2026-03-14 10:22   Till 1\n".encode(self.encoding)
        out += b"\n\n\n" + (CUT if cut else b"")
        await self.send(bytes(out))

    async def display_item(self, name: str, qty: Decimal, price: Decimal) -> None:
        """A CD5220 per-item update: name on the upper line, `2 @ 1.20  2.40` below."""
        lower = f"{qty} @ {_money(price)}"
        lower = f"{lower}{_money(qty * price):>{20 - len(lower)}}"
        await self.send(
            CD5220_UPPER
            + f"{name[:20]:<20}".encode(self.encoding)
            + b"\r"
            + CD5220_LOWER
            + lower.encode(self.encoding)
            + b"\r"
        )

    async def display_total(self, total: Decimal) -> None:
        """The total screen that closes a transaction on the display."""
        lower = f"TOTAL{_money(total):>15}"
        screen = CD5220_UPPER + b" " * 20 + b"\r" + CD5220_LOWER + lower.encode(self.encoding)
        await self.send(b"\x0c" + screen + b"\r\x0c")

    def ring(self, items: Sequence[tuple[str, Decimal]], period: float, seed: int = 1) -> None:
        """Ring up random sale lines every `period` seconds until the simulator closes."""
        self._task = asyncio.create_task(self._ring(items, period, seed), name="sim:pos")

    async def _ring(self, items: Sequence[tuple[str, Decimal]], period: float, seed: int) -> None:
        rng = random.Random(seed)
        txn = 0
        while not self.pty.closed:
            txn += 1
            for _ in range(rng.choice((1, 1, 2, 3))):
                sku, price = rng.choice(items)
                await self.sale_line(txn, sku, Decimal(rng.choice((1, 1, 2))), price)
            await asyncio.sleep(period)
