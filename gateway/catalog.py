"""The store's catalog at run time: SKUs and the ways a device may name them.

A till may print a SKU, a PLU or only a product name (a pole display); an RFID tag
carries a GTIN. This class answers "which SKU is that?" for all of them, once built from
the `catalog` config section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(frozen=True, slots=True)
class Item:
    """One SKU as the gateway needs it."""

    sku: str
    name: str
    gtin: str | None = None
    plu: str | None = None
    zone: str | None = None
    shelf_capacity: int | None = None
    unit_weight: float | None = None
    labels: tuple[str, ...] = ()


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())


class Catalog:
    """SKU lookups by sku, GTIN (any length, normalised to GTIN-14), PLU and name."""

    __slots__ = ("_by_gtin", "_by_name", "_by_plu", "currency", "items")

    def __init__(self, items: Iterable[Item], currency: str) -> None:
        self.currency = currency
        self.items: dict[str, Item] = {i.sku: i for i in items}
        self._by_gtin = {i.gtin.zfill(14): i for i in self.items.values() if i.gtin}
        self._by_plu = {i.plu: i for i in self.items.values() if i.plu}
        self._by_name = {_name_key(i.name): i for i in self.items.values()}

    @classmethod
    def from_config(cls, section: Any) -> Catalog:
        """Build from the validated `catalog` config section."""
        items = [
            Item(
                sku=s.sku,
                name=s.name,
                gtin=s.gtin,
                plu=s.plu,
                zone=s.zone,
                shelf_capacity=s.shelf_capacity,
                unit_weight=s.unit_weight,
                labels=tuple(s.labels),
            )
            for s in section.skus
        ]
        return cls(items, section.currency)

    def by_gtin(self, gtin: str) -> Item | None:
        """The item with this GTIN (8, 12, 13 or 14 digits)."""
        return self._by_gtin.get(gtin.zfill(14))

    def resolve(self, text: str) -> Item | None:
        """The item a till means by `text`: a SKU, a PLU, or a product name."""
        stripped = text.strip()
        return (
            self.items.get(stripped)
            or self._by_plu.get(stripped)
            or self._by_name.get(_name_key(stripped))
        )
