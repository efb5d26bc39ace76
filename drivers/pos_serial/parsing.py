"""POS capture parsers, IO-free: one-sale-per-line patterns and the receipt state machine.

Both shapes come from contract.md "POS capture": (a) a stream with one complete sale per
line, read with a regular expression with named groups; (b) receipts, read line by line by a
small state machine and emitted whole when the receipt ends (paper cut or an end line). Text
comes from `drivers.pos_serial.escpos.EscPosText`. Money is `Decimal`, never float. Lines
that match nothing come back as `Reject`s so the driver can count them; nothing here raises
on input text, only on a bad pattern at config time (`PatternError`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from drivers.pos_serial.escpos import Marker

if TYPE_CHECKING:
    from collections.abc import Iterable

LINE_GROUPS = frozenset({"txn", "sku", "qty", "price"})
LINE_OPTIONAL = frozenset({"amount", "name", "ts"})
MAX_DIGITS = 18


class PatternError(ValueError):
    """A configured pattern is not a valid regular expression or lacks required groups."""


@dataclass(frozen=True, slots=True)
class SaleLine:
    """One sold item; `price` is the unit price and `amount` the line total."""

    txn: str | None
    sku: str | None
    name: str | None
    qty: Decimal
    price: Decimal
    amount: Decimal
    ts: str | None = None
    total_mismatch: bool = False


@dataclass(frozen=True, slots=True)
class Reject:
    """A line the parser could not use, with the reason (for counters and rate-limited logs)."""

    text: str
    reason: str


def compile_pattern(
    pattern: str, required: Iterable[str], optional: Iterable[str] = (), *, what: str = "pattern"
) -> re.Pattern[str]:
    """Compile a configured regex; PatternError names every missing or unknown group."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise PatternError(f"{what}: not a valid regular expression: {exc}") from exc
    groups = set(regex.groupindex)
    required, optional = set(required), set(optional)
    problems = []
    if missing := required - groups:
        problems.append(f"lacks the named group(s) {', '.join(sorted(missing))}")
    if unknown := groups - required - optional:
        problems.append(
            f"has unknown group(s) {', '.join(sorted(unknown))}"
            f" (allowed: {', '.join(sorted(required | optional))})"
        )
    if problems:
        raise PatternError(f"{what}: the regular expression {'; '.join(problems)}")
    return regex


def parse_money(text: str, decimal_separator: str = ".") -> Decimal | None:
    """Parse `1,234.50`, `-0.20`, `0.20-` (receipt-style trailing minus); None if not a number."""
    if decimal_separator not in {".", ","}:
        raise ValueError(f"decimal separator must be '.' or ',', got {decimal_separator!r}")
    thousands = "," if decimal_separator == "." else "."
    cleaned = text.strip().replace(thousands, "").replace(" ", "").replace("'", "")
    if cleaned.endswith("-"):
        cleaned = "-" + cleaned[:-1]
    cleaned = cleaned.replace(decimal_separator, ".")
    if not re.fullmatch(r"[+-]?\d+(?:\.\d+)?", cleaned, flags=re.ASCII):
        return None
    if sum(c.isdigit() for c in cleaned) > MAX_DIGITS:
        return None  # no till prints such a number; it would also overflow Decimal arithmetic
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def _group(match: re.Match[str], name: str) -> str | None:
    value = match.groupdict().get(name)
    return value.strip() if value is not None and value.strip() else None


class LineFormat:
    """One sale per line: a regex with groups txn, sku, qty, price (+ amount, name, ts)."""

    def __init__(self, pattern: str, decimal_separator: str = ".") -> None:
        """Compile and check the pattern now, so a bad one is a config error."""
        self._regex = compile_pattern(pattern, LINE_GROUPS, LINE_OPTIONAL, what="line pattern")
        parse_money("0", decimal_separator)
        self._sep = decimal_separator

    def parse(self, line: str) -> SaleLine | Reject:
        """Parse one line (searched, so anchor the pattern with ^ $ when needed)."""
        match = self._regex.search(line)
        if match is None:
            return Reject(line, "does not match the line pattern")
        txn, sku = _group(match, "txn"), _group(match, "sku")
        qty = parse_money(_group(match, "qty") or "", self._sep)
        price = parse_money(_group(match, "price") or "", self._sep)
        if txn is None or sku is None:
            return Reject(line, "empty txn or sku")
        if qty is None or price is None:
            return Reject(line, "qty or price is not a number")
        amount_text = _group(match, "amount")
        amount = parse_money(amount_text, self._sep) if amount_text else qty * price
        if amount is None:
            return Reject(line, "amount is not a number")
        return SaleLine(txn, sku, _group(match, "name"), qty, price, amount, _group(match, "ts"))


@dataclass(frozen=True, slots=True)
class ReceiptFormat:
    """The patterns of one POS's receipt layout; the defaults read protocols.md §4.2's sample."""

    item: str = r"^(?P<name>\S.*?)\s{2,}(?P<amount>\d+\.\d{2})$"
    quantity: str | None = (
        r"^\s+(?P<qty>\d+(?:\.\d+)?)\s*[xX@*]\s*(?P<price>\d+\.\d{2})\s+(?P<amount>\d+\.\d{2})$"
    )
    discount: str | None = r"^\s+-\S.*?\s{2,}(?P<amount>-?\d+\.\d{2}-?)$"
    total: str = r"^TOTAL\s+(?P<total>-?\d+\.\d{2})$"
    txn: str = r"^#(?P<txn>\d+)\s+(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d)"
    ignore: str | None = r"^(?:SUBTOTAL|CASH|CHANGE|CARD|VAT|TAX)\b"
    end: str | None = None
    """A line that ends the receipt; None: only the paper cut does."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """A finished receipt: its sales (each carrying the footer's txn) and printed total."""

    txn: str | None
    total: Decimal | None
    ts: str | None
    lines: tuple[SaleLine, ...]
    total_mismatch: bool


@dataclass(slots=True)
class _Draft:
    name: str | None
    sku: str | None
    qty: Decimal
    price: Decimal
    amount: Decimal
    explicit_qty: bool


@dataclass(slots=True)
class _Open:
    items: list[_Draft] = field(default_factory=list)
    pending: str | None = None
    txn: str | None = None
    ts: str | None = None
    total: Decimal | None = None
    lines: int = 0


class ReceiptParser:
    """Receipt state machine: item lines, quantity continuations, discounts, total, footer."""

    def __init__(
        self, fmt: ReceiptFormat | None = None, decimal_separator: str = ".", max_lines: int = 1000
    ) -> None:
        """Compile every pattern now (PatternError on a bad one); `max_lines` bounds a receipt."""
        fmt = fmt or ReceiptFormat()
        parse_money("0", decimal_separator)
        self._sep = decimal_separator
        self._max_lines = max_lines
        self._item = compile_pattern(fmt.item, (), {"name", "sku", "qty", "price", "amount"})
        if not {"name", "sku"} & set(self._item.groupindex) or not {"price", "amount"} & set(
            self._item.groupindex
        ):
            raise PatternError(
                "item pattern: needs a name or sku group and a price or amount group"
            )
        self._qty = self._optional(fmt.quantity, {"qty", "price"}, {"amount"}, "quantity")
        self._discount = self._optional(fmt.discount, {"amount"}, (), "discount")
        self._total = compile_pattern(fmt.total, {"total"}, (), what="total pattern")
        self._txn = compile_pattern(fmt.txn, {"txn"}, {"ts", "total"}, what="txn pattern")
        self._ignore = self._optional(fmt.ignore, (), (), "ignore")
        self._end = self._optional(fmt.end, (), (), "end")
        self._open = _Open()

    @staticmethod
    def _optional(
        pattern: str | None, required: Iterable[str], optional: Iterable[str], what: str
    ) -> re.Pattern[str] | None:
        if pattern is None:
            return None
        return compile_pattern(pattern, required, optional, what=f"{what} pattern")

    def feed(self, tokens: Iterable[str | Marker]) -> list[Receipt | Reject]:
        """Feed lines and cut markers (as `EscPosText.feed` returns them)."""
        out: list[Receipt | Reject] = []
        for token in tokens:
            out.extend(self.end() if isinstance(token, Marker) else self.feed_line(token))
        return out

    def feed_line(self, line: str) -> list[Receipt | Reject]:
        """Feed one text line; returns rejects and, when the line ends it, the receipt."""
        out: list[Receipt | Reject] = []
        rec = self._open
        if not line.strip():
            return out
        rec.lines += 1
        if self._ignore and self._ignore.search(line):
            pass
        elif match := self._total.search(line):
            rec.total = self._money(match, "total")
        elif match := self._txn.search(line):
            rec.txn, rec.ts = _group(match, "txn"), _group(match, "ts") or rec.ts
            if _group(match, "total"):
                rec.total = self._money(match, "total")
        elif self._discount and (match := self._discount.search(line)):
            amount = self._money(match, "amount")
            if rec.items and amount is not None:
                # A discount line lowers the line total of the item printed just above it.
                rec.items[-1].amount -= abs(amount)
            else:
                out.append(Reject(line, "discount without an item before it"))
        elif self._qty and (match := self._qty.search(line)):
            out.extend(self._quantity(line, match))
        elif match := self._item.search(line):
            out.extend(self._flush_pending())
            out.extend(self._add_item(line, match))
        else:
            # Maybe an item name whose quantity line follows (§4.2 "COKE 330ML").
            out.extend(self._flush_pending())
            rec.pending = line.strip()
        if (self._end and self._end.search(line)) or rec.lines >= self._max_lines:
            out.extend(self.end())
        return out

    def end(self) -> list[Receipt | Reject]:
        """End the open receipt (paper cut, end line, or the driver's idle timeout)."""
        out: list[Receipt | Reject] = list(self._flush_pending())
        rec, self._open = self._open, _Open()
        if not rec.items:
            return out
        total_amount = sum((item.amount for item in rec.items), Decimal(0))
        mismatch = rec.total is not None and total_amount != rec.total
        lines = tuple(
            SaleLine(rec.txn, d.sku, d.name, d.qty, d.price, d.amount, rec.ts, mismatch)
            for d in rec.items
        )
        out.append(Receipt(rec.txn, rec.total, rec.ts, lines, mismatch))
        return out

    def _money(self, match: re.Match[str], name: str) -> Decimal | None:
        text = _group(match, name)
        return parse_money(text, self._sep) if text else None

    def _flush_pending(self) -> list[Reject]:
        pending, self._open.pending = self._open.pending, None
        return [Reject(pending, "text without a price (header or unknown line)")] if pending else []

    def _add_item(self, line: str, match: re.Match[str]) -> list[Reject]:
        qty = self._money(match, "qty")
        price, amount = self._money(match, "price"), self._money(match, "amount")
        name, sku = _group(match, "name"), _group(match, "sku")
        if (price is None and amount is None) or qty == 0:
            return [Reject(line, "item line without a usable price")]
        explicit = qty is not None
        qty = qty if qty is not None else Decimal(1)
        if price is None and amount is not None:
            price = (amount / qty).quantize(amount) if qty != 1 else amount
        assert price is not None
        amount = amount if amount is not None else qty * price
        self._open.items.append(_Draft(name, sku, qty, price, amount, explicit))
        return []

    def _quantity(self, line: str, match: re.Match[str]) -> list[Reject]:
        qty, price = self._money(match, "qty"), self._money(match, "price")
        amount = self._money(match, "amount")
        if qty is None or price is None:
            return [Reject(line, "quantity line without a usable quantity or price")]
        rec = self._open
        if rec.pending is not None:
            name, rec.pending = rec.pending, None
            total = amount if amount is not None else qty * price
            rec.items.append(_Draft(name, None, qty, price, total, explicit_qty=True))
            return []
        if rec.items and not rec.items[-1].explicit_qty:
            # Layout "NAME  2.40" then "  2 x 1.20": the quantity line refines the item above.
            last = rec.items[-1]
            last.qty, last.price, last.explicit_qty = qty, price, True
            return []
        return [Reject(line, "quantity line without an item name before it")]
