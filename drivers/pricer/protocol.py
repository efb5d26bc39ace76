"""IO-free Pricer Plaza knowledge (protocols.md §5.2): paths, the item body, label status.

Read from Pricer's public API pages as summarised in protocols.md §5.2 ([src]); the exact
method of "update or add multiple items" and the items-result path and shape are not stated
there and are marked [unverified] where used.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.actuator import LabelContent

API = "api/public/core/v1/"
ITEMS = API + "items"  # "update or add multiple items": PATCH [unverified: method]
LABELS = API + "labels"
RESULT = API + "items-result/{request_id}"  # [unverified: path and shape]


def item_body(content: LabelContent) -> dict[str, Any]:
    """One item as Pricer stores it: only populated fields change (protocols.md §5.2)."""
    properties = {f"text_{k}": v for k, v in sorted(content.texts.items())}
    properties["currency"] = content.currency
    if content.promo_price is not None:
        properties["promo_price"] = content.promo_price
    if content.unit_price is not None:
        properties["unit_price"] = content.unit_price
        properties["unit_basis"] = content.unit_basis or ""
    return {
        "itemId": content.sku,
        "itemName": content.name,
        "price": content.price,
        "properties": properties,
    }


def last_ok_update(label: Any) -> float | None:
    """`lastOkUpdate` of a label record as epoch seconds: when it last showed its latest data."""
    if not isinstance(label, dict):
        return None
    text = label.get("lastOkUpdate")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def request_failed(result: Any) -> str | None:
    """The failure text of an items-result, None while pending or when it succeeded."""
    if not isinstance(result, dict):
        return None
    status = str(result.get("status", "")).upper()
    if status in ("FAILED", "ERROR", "REJECTED"):
        return str(result.get("message") or result.get("errors") or status)[:200]
    return None
