"""Checks across entries (duplicate ids, unknown references), run on the document itself.

They run on the plain data rather than the validated models so that they report even
when other parts of the file have errors: the technician gets every problem at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.config.links import link_references
from gateway.config.messages import suggest

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.config.errors import ConfigIssue, KeyPath
    from gateway.config.loader import Document


def cross_checks(doc: Document) -> list[ConfigIssue]:
    """Duplicate device ids, SKUs and GTINs; per-device windows naming unknown devices."""
    data = doc.data if isinstance(doc.data, dict) else {}
    issues: list[ConfigIssue] = []
    devices = data.get("devices")
    ids = _unique(doc, ("devices",), devices, "id", what="id", issues=issues)
    catalog = data.get("catalog")
    if isinstance(catalog, dict):
        skus = catalog.get("skus")
        _unique(doc, ("catalog", "skus"), skus, "sku", what="sku", issues=issues)
        _unique(
            doc, ("catalog", "skus"), skus, "gtin", what="GTIN", issues=issues, normalise=_gtin14
        )
    aggregation = data.get("aggregation")
    windows = aggregation.get("device_windows") if isinstance(aggregation, dict) else None
    if isinstance(windows, dict) and isinstance(devices, list):
        known = sorted(ids)
        for device_id in windows:
            if device_id not in ids:
                path = ("aggregation", "device_windows", device_id)
                msg = f"no device has the id '{device_id}'" + suggest(device_id, known, "known ids")
                issues.append(doc.issue(path, msg, at_key=True))
    issues += link_references(doc)
    return issues


def _unique(
    doc: Document,
    path: KeyPath,
    items: Any,
    key: str,
    *,
    what: str,
    issues: list[ConfigIssue],
    normalise: Callable[[str], str] | None = None,
) -> set[str]:
    """Report repeated `key` values among `items` at the repeat; return the values seen."""
    first: dict[str, int] = {}
    if not isinstance(items, list):
        return set()
    for i, item in enumerate(items):
        value = item.get(key) if isinstance(item, dict) else None
        if not isinstance(value, str):
            continue
        where = (*path, i, key)
        norm = normalise(value) if normalise else value
        if norm in first:
            msg = f"duplicate {what} '{value}' (first used at line {first[norm]})"
            issues.append(doc.issue(where, msg))
        else:
            first[norm] = doc.position(where)[0]
    return set(first) if normalise is None else set()


def _gtin14(value: str) -> str:
    # GTIN-8/12/13 are GTIN-14 with leading zeros (GS1 General Specifications §3.3.2).
    return value.zfill(14)
