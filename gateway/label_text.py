"""Label content from a price item: money formatted per currency, template lines filled in.

IO-free. `format_money(Decimal("12.9"), "EUR", formats)` → `12,90 €`; `¥12.90` for CNY.
Rounding is ROUND_HALF_UP on the currency's digits (a shelf shows what the till charges:
the cloud sends exact amounts, so rounding only matters for JPY-like currencies).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from gateway.actuator import LabelContent
from gateway.config.labels import CurrencyFormat, LabelTemplate

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.price_items import PriceItem

_FALLBACK = CurrencyFormat()


def format_money(amount: Decimal, code: str, formats: Mapping[str, CurrencyFormat]) -> str:
    """`amount` written the way shoppers of `code` expect (`labels.template.currencies`)."""
    fmt = formats.get(code, _FALLBACK)
    quantum = Decimal(1).scaleb(-fmt.digits)
    rounded = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    whole, _, frac = f"{abs(rounded):f}".partition(".")
    if fmt.thousands:
        groups: list[str] = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        whole = fmt.thousands.join([whole, *groups])
    text = whole + (fmt.decimal + frac if fmt.digits else "")
    if rounded < 0:
        text = "-" + text
    return fmt.pattern.format(amount=text, code=code)


def render(
    item: PriceItem, name: str, template: LabelTemplate, *, promo: bool = True
) -> LabelContent:
    """The content of every label of `item`'s SKU; `promo=False` drops the promotion (revert)."""
    money = template.currencies

    def fmt(value: str | None) -> str:
        return format_money(Decimal(value), item.currency, money) if value is not None else ""

    promo_price = item.promo_price if promo else None
    basis = template.basis_names.get(item.unit_basis or "", item.unit_basis or "")
    values = {
        "name": name,
        "sku": item.sku,
        "price": fmt(item.price),
        "regular": fmt(item.price),
        "promo": fmt(promo_price),
        "unit_price": fmt(item.unit_price),
        "basis": basis,
        "currency": item.currency,
    }
    texts = {"title": template.title.format(**values), "price": template.price.format(**values)}
    if promo_price is not None:
        texts["promo"] = template.promo.format(**values)
    if item.unit_price is not None:
        texts["unit_price"] = template.unit_price.format(**values)
    return LabelContent(
        sku=item.sku,
        name=name,
        price=item.price,
        currency=item.currency,
        version=item.version,
        promo_price=promo_price,
        unit_price=item.unit_price,
        unit_basis=item.unit_basis,
        texts=texts,
    )
