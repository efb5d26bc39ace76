"""Store configurations and demand shapes for the simulator (parameters go into the model card).

Grounding (stockout.md "Why and how big"): hourly and weekly seasonality with a busier
Saturday; promotions with 1.5-3x lift, where OOS is ~2x the average; store-originated
causes (ordering from a wrong book, skipped refill walks); unrecorded shrink ~1.4 % of
sales; mis-scans so the book is wrong for most SKUs; RFID read probability 0.85-0.98,
a few stray reads; load cells with ~2 g noise, a few g/day drift, 1-3 % unit spread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Day-of-week demand multipliers, Monday first: weekend peak (Andersen 1996: OOS worst on Sunday).
DOW_MULT: tuple[float, ...] = (0.9, 0.85, 0.9, 1.0, 1.2, 1.35, 0.9)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """One simulated store: hours, sensors, staff routines, supply and demand parameters."""

    name: str
    n_skus: int
    open_hour: int
    close_hour: int
    sunday_open: bool
    rfid_share: float  # SKUs with shelf RFID
    scale_share: float  # SKUs on shelf load cells
    walk_hours: tuple[int, ...]  # shelf refill walks (local hour)
    walk_skip_p: float  # a walk misses a given SKU
    refill_trigger: float  # refill when the shelf is below this share of capacity
    refill_log_p: float  # a refill is logged on the handheld
    delivery_days: tuple[int, ...]  # weekdays (Monday 0) with a delivery at 06:00
    delivery_delay_p: float  # delivery arrives at 13:00 instead
    delivery_miss_p: float  # delivery skipped: arrives with the next one
    safety_factor: float  # order-up-to multiplier on forecast demand
    forecast_error: float  # lognormal sigma of the store's velocity estimate per SKU
    rate_median: float  # units/day, lognormal across SKUs
    rate_sigma: float
    cover_days: float  # median shelf capacity in days of demand
    promo_weekly_p: float  # chance a SKU starts a planned promotion in a week
    unplanned_daily_p: float  # unflagged demand spikes (weather, local events)
    shrink_share: float  # unrecorded loss per unit sold
    misscan_p: float  # a unit sold is recorded under another SKU
    audit_daily_p: float  # a SKU's book is corrected by a count
    rfid_outage_daily_p: float
    scale_outage_daily_p: float
    utc_offset_s: float = 0.0

    def card(self) -> dict[str, Any]:
        """The parameters as a JSON-ready dict for the model card."""
        return asdict(self)


def hour_weights(open_hour: int, close_hour: int) -> list[float]:
    """Share of a day's sales per hour (24 values): a lunch and an after-work peak."""
    raw = [0.0] * 24
    for h in range(open_hour, close_hour):
        lunch = 0.8 * 2.0 ** (-((h - 12.5) ** 2) / 4.0)
        evening = 1.0 * 2.0 ** (-((h - 17.5) ** 2) / 5.0)
        raw[h] = 0.35 + lunch + evening
    total = sum(raw)
    return [w / total for w in raw]


TRAIN_STORES: tuple[StoreConfig, ...] = (
    StoreConfig("urban_convenience", 300, 7, 22, True, 0.3, 0.1, (6, 12, 17), 0.15, 0.5,  # noqa: FBT003
                0.8, (0, 1, 2, 3, 4, 5), 0.1, 0.05, 1.3, 0.25, 4.0, 1.0, 2.5, 0.15, 0.02,
                0.014, 0.02, 0.03, 0.05, 0.03),
    StoreConfig("suburban_grocery", 300, 8, 20, False, 0.0, 0.2, (7, 14), 0.2, 0.5,  # noqa: FBT003
                0.7, (0, 2, 4), 0.1, 0.05, 1.3, 0.3, 3.0, 1.1, 3.0, 0.2, 0.02,
                0.014, 0.02, 0.03, 0.05, 0.03),
    StoreConfig("discount", 300, 8, 21, True, 0.0, 0.0, (7, 15), 0.25, 0.4,  # noqa: FBT003
                0.6, (1, 4), 0.15, 0.08, 1.2, 0.35, 5.0, 1.0, 2.0, 0.3, 0.03,
                0.02, 0.03, 0.02, 0.05, 0.03),
    StoreConfig("village_shop", 300, 7, 19, True, 0.5, 0.3, (6, 13), 0.1, 0.5,  # noqa: FBT003
                0.9, (0, 3), 0.1, 0.05, 1.4, 0.25, 2.0, 1.0, 3.5, 0.1, 0.02,
                0.01, 0.01, 0.03, 0.05, 0.03),
)  # fmt: skip

# Never trained on: other hours, walks, delivery rhythm, sensor mix, velocity and UTC offset.
HELDOUT_STORE = StoreConfig(
    "market_hall", 300, 8, 20, True, 0.2, 0.2, (7, 12, 16), 0.2, 0.45,  # noqa: FBT003
    0.75, (0, 2, 4, 5), 0.12, 0.06, 1.25, 0.3, 3.5, 1.05, 2.8, 0.2, 0.025,
    0.014, 0.02, 0.03, 0.05, 0.03, utc_offset_s=3600.0,
)  # fmt: skip


def small(config: StoreConfig, n_skus: int) -> StoreConfig:
    """The same store with fewer SKUs (the `--small` mode)."""
    params = config.card()
    params["n_skus"] = n_skus
    return StoreConfig(**params)
