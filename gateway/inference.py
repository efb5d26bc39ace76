"""The `inference` service: stockout risk per SKU every few minutes, alerts, model updates.

Enabled by the `inference` config section (gateway/config/inference.py); only then are
numpy and onnxruntime imported (contract.md, memory). What it does (issue 7, docs/inference.md):
- keeps every SKU's hourly sales for 14 days (a `Sale` subscription on the pipeline),
  persisted hour by hour in the daemon's state store;
- every `interval`, aligned to the clock, copies that state and the inventory service's
  on-shelf estimates (`services["inventory"].estimates()`; without that service it says
  so in status and scores from catalog capacities, `gateway.stockout.runtime`), builds the
  feature matrix of all SKUs and scores it in one batch in a worker thread;
- publishes `predictions` (changes, plus a snapshot every `snapshot_interval`) and
  raises/clears `alerts` with hysteresis (`gateway.stockout.alerts`);
- answers `P/cmd/model` install/rollback (`gateway.model_updates`).
A round that fails is logged and counted; the service carries on (one bad round must not
stop the daemon).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any, Protocol

from gateway.events import Sale
from gateway.payloads import UlidFactory
from gateway.services import Service
from gateway.sinks import BUSINESS, TELEMETRY

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from gateway.config import Config
    from gateway.config.inference import InferenceConfig
    from gateway.estimates import ShelfEstimate
    from gateway.model_store import LoadedModel
    from gateway.services import ServiceContext
    from gateway.stockout.runtime import RoundResult

log = logging.getLogger(__name__)

FLUSH_EVERY = 60.0  # seconds between saves of the hour in progress (what a crash may lose)
_SLOT = "inference:sales:{}"


class Inventory(Protocol):
    """What inference needs of the inventory service."""

    def estimates(self) -> Mapping[str, ShelfEstimate]:
        """The latest on-shelf estimate per SKU."""
        ...


def _local_offset(now: float) -> float:
    # The store's local time is the system's (the Pi is set to the shop's time zone).
    return float(time.localtime(now).tm_gmtoff)


class InferenceService(Service):
    """Scores stockout risk for every SKU and turns it into predictions and alerts."""

    name = "inference"

    def __init__(
        self,
        ctx: ServiceContext,
        section: InferenceConfig,
        *,
        wall: Callable[[], float] = time.time,
        utc_offset: Callable[[float], float] = _local_offset,
    ) -> None:
        super().__init__(ctx)
        # numpy only now that inference is enabled (contract.md: memory).
        from gateway.model_store import ModelSource  # noqa: PLC0415
        from gateway.model_updates import ModelManager  # noqa: PLC0415
        from gateway.stockout.alerts import AlertBook  # noqa: PLC0415
        from gateway.stockout.history import SalesHistory  # noqa: PLC0415

        self.section = section
        self._wall = wall
        self._utc_offset = utc_offset
        self.history = SalesHistory(section.max_skus)
        hyst = section.hysteresis
        self.alerts = AlertBook(section.threshold or 0.5, hyst.clear_margin, hyst.min_hold)
        self.models = ModelManager(
            ctx.config.gateway.state_dir / "models",
            ModelSource.configured(section.model),
            public_keys=ctx.config.commands.public_keys,
            max_size=section.max_model_size,
            horizon_h=None if section.horizon is None else section.horizon / 3600,
            on_swap=self._on_swap,
        )
        self._published: dict[str, tuple[float, bool]] = {}
        self._ids = UlidFactory()
        self._last_snapshot = -math.inf
        self._round_lock = asyncio.Lock()
        self.counts: dict[str, int] = dict.fromkeys(
            ("rounds", "failed_rounds", "skipped_rounds", "sales", "unusable_sales"), 0
        )
        self.counts |= {"alerts_raised": 0, "alerts_cleared": 0, "predictions": 0}
        self.last_round: dict[str, Any] | None = None
        self._inventory_note: str | None = None

    # -- life cycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Restore history and open alerts, subscribe to sales, load the model, take commands."""
        now = self._wall()
        from gateway.stockout.history import WIDTH  # noqa: PLC0415

        for slot in range(WIDTH):
            state = self.ctx.states.get(_SLOT.format(slot))
            if "hour" in state:
                self.history.restore_hour({"hour": state["hour"], "sales": state["sales"]}, now)
        self.alerts.restore(self.ctx.states.get("inference").get("alerts"))
        self.ctx.pipeline.subscribe(Sale, self._on_sale)
        await self.models.load_initial()
        if self.ctx.router is not None:
            self.ctx.router.register(
                "model",
                self.models.handle,
                actions=("install", "rollback"),
                max_assembled=self.models.max_assembled,
            )

    async def run(self) -> None:
        """Score every `interval` (aligned to the clock); save the hour in progress meanwhile."""
        while True:
            due = (math.floor(self._wall() / self.section.interval) + 1) * self.section.interval
            while (left := due - self._wall()) > 0:
                await asyncio.sleep(min(left, FLUSH_EVERY))
                self.flush()
            await self.run_round()

    async def reconfigure(self, config: Config) -> None:
        """Apply a reloaded `inference` section (enabling/disabling needs a restart)."""
        section = config.inference
        if section is None or not section.enabled:
            log.warning("Inference was disabled in the config; it stops at the next restart")
            return
        self.section = section
        self.alerts.clear_margin = section.hysteresis.clear_margin
        self.alerts.min_hold = section.hysteresis.min_hold
        if self.models.current is not None:
            self._on_swap(self.models.current)

    async def close(self) -> None:
        """Save the sales history and the open alerts (the daemon writes them after this)."""
        self.flush()

    # -- events -------------------------------------------------------------------------

    def _on_sale(self, sale: Sale) -> None:
        qty = float(sale.qty)
        # Refunds and unresolved names do not count as demand for a shelf.
        if sale.sku is None or not qty > 0 or not self.history.add(sale.sku, qty, sale.ts):
            self.counts["unusable_sales"] += 1
            return
        self.counts["sales"] += 1

    def _on_swap(self, model: LoadedModel) -> None:
        threshold = self.section.threshold or model.card.threshold
        self.alerts.threshold = threshold
        # A clear level at or below 0 would never clear: keep it at least half the threshold.
        self.alerts.clear_margin = min(self.section.hysteresis.clear_margin, threshold / 2)
        self._published.clear()  # a new model's risks are all news: next round republishes

    def flush(self) -> None:
        """Put the changed hours of sales and the open alerts into the state store."""
        from gateway.stockout.history import WIDTH  # noqa: PLC0415

        for hour in sorted(self.history.dirty_hours):
            record = self.history.export_hour(hour)
            state = self.ctx.states.get(_SLOT.format(hour % WIDTH))
            state["hour"], state["sales"] = record["hour"], record["sales"]
        self.history.dirty_hours.clear()
        self.ctx.states.get("inference")["alerts"] = self.alerts.state()

    # -- one round ----------------------------------------------------------------------

    def _estimates(self) -> Mapping[str, ShelfEstimate] | None:
        inventory = self.ctx.services.get("inventory")
        note = None
        estimates: Mapping[str, ShelfEstimate] | None = None
        if inventory is None or not hasattr(inventory, "estimates"):
            note = "no inventory service: on-shelf = catalog capacity (source book)"
        else:
            try:
                estimates = dict(inventory.estimates())
            except Exception as exc:
                note = f"inventory estimates failed ({type(exc).__name__}): scored as without"
        if note != self._inventory_note:
            if note is not None:
                log.warning("Stockout scoring: %s", note)
            self._inventory_note = note
        return estimates

    async def run_round(self) -> RoundResult | None:
        """Score all SKUs once and publish; None when there is no model or the round failed."""
        async with self._round_lock:
            model = self.models.current  # one reference: a swap mid-round does not affect it
            if model is None:
                self.counts["skipped_rounds"] += 1
                return None
            try:
                result = await self._score(model)
                await self._publish(model, result)
            except Exception:
                self.counts["failed_rounds"] += 1
                log.exception("Stockout scoring round failed")
                return None
            self.flush()
            return result

    async def _score(self, model: LoadedModel) -> RoundResult:
        from gateway.stockout.runtime import RoundInput, score_round  # noqa: PLC0415

        now = self._wall()
        estimates = self._estimates()
        catalog = self.ctx.catalog().items
        capacities = {s: i.shelf_capacity for s, i in catalog.items() if i.shelf_capacity}
        for sku in [*catalog, *(estimates or ())]:
            self.history.row(sku)
        sales, last_sale = self.history.window(now)
        inp = RoundInput(
            now=now,
            utc_offset_s=self._utc_offset(now),
            horizon_h=model.card.horizon_h,
            skus=list(self.history.skus),
            sales=sales,
            last_sale=last_sale,
            first_hour=self.history.first_hour or 0,
            estimates=estimates,
            capacities=capacities,
        )
        result = await asyncio.to_thread(score_round, inp, model.score)
        self.counts["rounds"] += 1
        self.last_round = {
            "at": now,
            "skus": len(result.skus),
            "unscored": result.unscored,
            "features_ms": round(result.features_ms, 2),
            "score_ms": round(result.score_ms, 2),
        }
        return result

    async def _publish(self, model: LoadedModel, result: RoundResult) -> None:
        from gateway.stockout.alerts import RAISED  # noqa: PLC0415
        from gateway.stockout.messages import alert_body, prediction_bodies  # noqa: PLC0415

        now = self._wall()
        transitions = self.alerts.update(result.skus, result.risk, result.empty_now, now)
        head = {
            "model": model.card.label,
            "horizon_s": model.card.horizon_h * 3600,
            "threshold": round(self.alerts.threshold, 4),
        }
        for t in transitions:
            body = alert_body(t, result, head=head, threshold=self.alerts.threshold)
            await self.ctx.sink.send("alerts", body, BUSINESS)
            self.counts["alerts_raised" if t.state == RAISED else "alerts_cleared"] += 1
        snapshot = now - self._last_snapshot >= self.section.snapshot_interval
        if snapshot:
            self._last_snapshot = now
        bodies = prediction_bodies(
            result,
            self._published,
            self.alerts,
            head=head,
            snapshot=snapshot,
            min_change=self.section.min_change,
            ids=self._ids,
        )
        for body in bodies:
            await self.ctx.sink.send("predictions", body, TELEMETRY)
            self.counts["predictions"] += 1

    def stats(self) -> dict[str, Any]:
        """Status section: the model, the last round, alerts, and what is missing."""
        state = "ok" if self.models.current is not None else "no_model"
        return {
            "state": state,
            **self.models.describe(),
            "inventory": self._inventory_note or "inventory service",
            "commands": "P/cmd/model" if self.ctx.router is not None else "none (no mqtt)",
            "skus": len(self.history),
            "history_hours": 0
            if self.history.head is None or self.history.first_hour is None
            else self.history.head - self.history.first_hour,
            "open_alerts": len(self.alerts),
            "last_round": self.last_round,
            **self.counts,
            "refused_skus": self.history.refused_skus,
            "late_sales": self.history.late_sales,
        }


def build(ctx: ServiceContext) -> Service | None:
    """The inference service when the config's `inference` section enables it."""
    section = ctx.config.inference
    if section is None or not section.enabled:
        return None
    try:
        return InferenceService(ctx, section)
    except ImportError as exc:  # installed without the `inference` extra
        log.error(
            "Inference is enabled but %s is not installed (pip install 'storegw[inference]'); "
            "running without predictions",
            exc.name,
        )
        return None
