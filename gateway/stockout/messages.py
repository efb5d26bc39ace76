"""Payload bodies for `P/predictions` and `P/alerts` from a scoring round (docs/asyncapi.yaml).

Predictions: a round publishes the SKUs whose risk moved by `min_change` since they were
last published (or whose alert state changed), and every `snapshot_interval` all of them
(`full: true`). Payloads stay under 128 KB (contract.md): a longer list is cut into
parts, each its own message with `part: {of, n, total}` sharing one `of` id.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from gateway.payloads import UlidFactory, rfc3339
from gateway.stockout.alerts import CLEARED, EMPTY_NOW
from gateway.stockout.features import FEATURE_NAMES
from gateway.stockout.runtime import SOURCE_NAMES

if TYPE_CHECKING:
    from gateway.stockout.alerts import AlertBook, Transition
    from gateway.stockout.runtime import RoundResult

PART_BYTES = 100_000  # under the 120 KB part limit, with room for the envelope
_ITEM_OVERHEAD = 90  # bytes of one item besides its SKU (keys, risk, on_shelf, source, alert)
_SOURCE = FEATURE_NAMES.index("estimate_source")


def _item(result: RoundResult, i: int, alert: bool) -> dict[str, Any]:
    x = result.features[i]
    item: dict[str, Any] = {
        "sku": result.skus[i],
        "risk": round(float(result.risk[i]), 4),
        "on_shelf": round(float(x[0]), 2),
        "source": SOURCE_NAMES.get(int(x[_SOURCE]), "book"),
    }
    if alert:
        item["alert"] = True
    return item


def prediction_bodies(
    result: RoundResult,
    published: dict[str, tuple[float, bool]],
    alerts: AlertBook,
    *,
    head: dict[str, Any],
    snapshot: bool,
    min_change: float,
    ids: UlidFactory,
) -> list[dict[str, Any]]:
    """The round's predictions messages; updates `published` ({sku: (risk, alert)})."""
    items = []
    for i, sku in enumerate(result.skus):
        risk, alert = float(result.risk[i]), alerts.is_open(sku)
        last = published.get(sku)
        if snapshot or last is None or last[1] != alert or abs(risk - last[0]) >= min_change:
            items.append(_item(result, i, alert))
            published[sku] = (risk, alert)
    if not items:
        return []
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for item in items:
        cost = len(item["sku"].encode()) + _ITEM_OVERHEAD
        if parts[-1] and size + cost > PART_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += cost
    bodies = [{**head, **({"full": True} if snapshot else {}), "items": chunk} for chunk in parts]
    if len(bodies) > 1:
        of = ids.new()
        for n, body in enumerate(bodies, 1):
            body["part"] = {"of": of, "n": n, "total": len(bodies)}
    return bodies


def _number(value: float) -> float:
    return round(value, 3) if math.isfinite(value) else 0.0


def alert_body(
    t: Transition, result: RoundResult, *, head: dict[str, Any], threshold: float
) -> dict[str, Any]:
    """One `P/alerts` message for a raised or cleared stockout alert."""
    x = result.features[t.row]
    features = {name: _number(float(v)) for name, v in zip(FEATURE_NAMES, x, strict=True)}
    hours = head["horizon_s"] / 3600
    if t.state == CLEARED:
        severity = "info"
        message = f"SKU {t.sku}: the stockout risk has fallen to {t.risk:.2f}; alert cleared."
    elif t.reason == EMPTY_NOW:
        severity = "critical"
        message = (
            f"SKU {t.sku} looks empty now (estimate {features['on_shelf']:g} units, "
            f"no sale for {features['hours_since_sale']:.1f} h): check the shelf and refill it."
        )
    else:
        severity = "warning"
        message = (
            f"SKU {t.sku} may run out within {hours:g} h (risk {t.risk:.2f}; about "
            f"{features['on_shelf']:g} units on the shelf, {features['expected_next_h']:.1f} "
            "expected to sell): refill it."
        )
    return {
        "kind": "stockout_risk",
        "severity": severity,
        "state": t.state,
        "message": message,
        "sku": t.sku,
        "risk": round(t.risk, 4),
        "threshold": round(threshold, 4),
        "details": {
            "reason": t.reason,
            "model": head["model"],
            "horizon_s": head["horizon_s"],
            "since": rfc3339(t.since),
            "source": SOURCE_NAMES.get(int(x[_SOURCE]), "book"),
            "features": features,
        },
    }
