"""The pricing service: `prices` commands become confirmed, scheduled shelf-label uploads.

Flow (issue 6, contract.md "Labels" and "Commands and acks"):
- `P/cmd/prices` with `params.items`: every item is validated on its own
  (`gateway.price_items`); a bad item is rejected with a reason and the good ones go on.
  Nothing valid → the whole command is `rejected`.
- Valid items are stored with the command (`gateway.pricing_store`), then applied at once
  or, with a future `valid_from`, at that time from the gateway's own clock — whether or
  not the broker is reachable. `valid_to` reverts the labels to the SKU's regular price
  (the latest applied item without `valid_to`; without one, the item without its promo).
- Applying an item renders its content (`gateway.label_text`) and creates one job per label
  of its SKU (catalog `labels`; `device/label` picks a device, else `labels.default_device`
  or the only label device). `gateway.label_uploader` uploads and confirms them.
- Versions: an item whose `version` is not above the highest received for its SKU is
  rejected (`stale_version`); an item whose start comes after a newer version was applied is
  `superseded` and never overwrites it.
- Idempotency: the router re-sends stored acks for repeated ids; a command interrupted by a
  restart is known to the store, so a re-send waits for the same jobs instead of creating
  new ones, and after the restart the service sends the final ack itself once its jobs
  settle (marked `resumed`).
- The final ack is `done` with a result per item: `applied` (labels confirmed, failed labels
  with reasons, upload and confirmation times), `scheduled` (when), `failed`, `superseded`
  or `rejected` (reason, detail).
- History: finished commands with their items and label jobs are forgotten hourly once
  older than `commands.remember` (`PricingStore.prune`), so the store stays bounded.

Over 400 lines because the command, its schedule and its resumption share one lock and one
set of gates; split, each half would reach into the other's state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from gateway.actuator import LabelDeviceConfig
from gateway.commands import CommandRejected
from gateway.label_text import render
from gateway.label_uploader import LabelUploader
from gateway.payloads import rfc3339
from gateway.price_items import ItemRejected, PriceItem, validate_item
from gateway.pricing_store import ItemRow, JobRow, PricingStore
from gateway.services import Service, ServiceContext

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.commands import Command
    from gateway.config import Config

log = logging.getLogger(__name__)

MAX_ITEMS = 5000
_SWEEP = 1.0
_RESCHEDULE = 30.0  # re-read the schedule at least this often (wall-clock steps)
_PRUNE_EVERY = 3600.0  # forget finished history this often (and at start)


def build(ctx: ServiceContext) -> Service | None:
    """The pricing service, when a label device exists or catalog SKUs list labels."""
    config = ctx.config
    # The loader fills every absent section with its defaults, so `labels:` itself cannot
    # tell; a label device or a catalog label id can.
    has_device = any(isinstance(d, LabelDeviceConfig) for d in config.devices)
    if not has_device and not any(s.labels for s in config.catalog.skus):
        return None
    return PricingService(ctx)


class PricingService(Service):
    """Price commands → label jobs, schedules, confirmations, acks, a label-state summary."""

    name = "pricing"

    def __init__(self, ctx: ServiceContext, clock: Callable[[], float] = time.time) -> None:
        super().__init__(ctx)
        self.config = ctx.config.labels
        self.clock = clock
        self.store = PricingStore(ctx.config.gateway.state_dir / "labels.sqlite")
        self.uploader = LabelUploader(
            self.store, ctx.supervisor, self.config, self._job_settled, clock
        )
        self._gate_of: dict[int, str] = {}
        self._gates: dict[str, set[int]] = {}
        self._settled: dict[str, asyncio.Event] = {}
        self._resumed: list[str] = []
        self._apply_lock = asyncio.Lock()
        self._schedule_changed = asyncio.Event()
        self.counts: dict[str, int] = {"commands": 0, "items_rejected": 0, "resumed_acks": 0}
        # Finished commands, their items and jobs are kept as long as command ids are
        # remembered (`commands.remember`): a repeat within it gets the same answer.
        self._keep = ctx.config.commands.remember
        self._pruned_at: float | None = None

    # -- life cycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Open the store, register `prices`, resume the jobs of a previous run."""
        await asyncio.to_thread(self.store.open)
        if self.ctx.router is not None:
            self.ctx.router.register("prices", self._prices)
        self.uploader.add(self.store.active_jobs())
        await self._apply_due()
        for cmd_id, job_ids in self.store.unfinished().items():
            self._gate(cmd_id, job_ids)
            self._resumed.append(cmd_id)

    async def run(self) -> None:
        """Apply schedules on time, sweep overdue confirmations, finish resumed commands."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._schedule_forever(), name="pricing:schedule")
            tasks.create_task(self._sweep_forever(), name="pricing:sweep")
            for cmd_id in self._resumed:
                tasks.create_task(self._finish_resumed(cmd_id), name=f"pricing:resume:{cmd_id}")
            self._resumed.clear()

    async def reconfigure(self, config: Config) -> None:
        """New template, pacing and retries apply to the next uploads."""
        self.config = config.labels
        self.uploader.config = self.config
        self._keep = config.commands.remember

    async def close(self) -> None:
        """Stop uploading; active jobs stay stored and resume at the next start."""
        await self.uploader.close()
        await asyncio.to_thread(self.store.close)

    def stats(self) -> dict[str, Any]:
        """The label-state summary (status and `P/metrics`)."""
        return {
            "jobs": self.store.summary(),
            "active": self.uploader.stats(),
            "next_schedule": _time(self.store.next_due()),
            **self.counts,
        }

    # -- the command ---------------------------------------------------------------------

    async def _prices(self, command: Command) -> dict[str, Any]:
        known = self.store.command(command.id)
        if known is not None:
            # Interrupted by a restart (the router only remembers finished commands).
            if known[1] is not None:
                return known[1]
            await command.accept()
            return await self._finish(command.id)
        items = _items(command.params)
        now = self.clock()
        results, valid = self._validate(items, now)
        if not valid:
            reasons = sorted({r["reason"] for r in results})
            raise CommandRejected(
                "invalid_value",
                f"No item of the batch is valid ({', '.join(reasons)}); "
                f"first: item 0: {results[0]['detail']}",
            )
        self.counts["commands"] += 1
        await command.accept()
        async with self._apply_lock:
            ids = await asyncio.to_thread(self.store.add_command, command.id, now, results, valid)
            self._gate(command.id, [])
            for idx, item in valid:
                if (item.valid_from or 0.0) <= now:
                    row = ItemRow(ids[idx], command.id, idx, item, "waiting")
                    self._gate(command.id, [j.id for j in await self._start(row)])
        self._schedule_changed.set()
        return await self._finish(command.id)

    def _validate(
        self, items: list[Any], now: float
    ) -> tuple[list[dict[str, Any]], list[tuple[int, PriceItem]]]:
        catalog = self.ctx.catalog()
        skus = [i["sku"] for i in items if isinstance(i, dict) and isinstance(i.get("sku"), str)]
        latest = self.store.latest_versions(skus) if skus else {}
        results: list[dict[str, Any]] = []
        valid: list[tuple[int, PriceItem]] = []
        for idx, raw in enumerate(items):
            entry: dict[str, Any] = {"index": idx}
            if isinstance(raw, dict) and isinstance(raw.get("sku"), str):
                entry["sku"] = raw["sku"]
            try:
                item = validate_item(raw, catalog.items.__contains__, now)
                for label in catalog.items[item.sku].labels or ["?"]:
                    self._route(label, item.sku)
                _check_version(item, latest.get(item.sku))
            except ItemRejected as exc:
                self.counts["items_rejected"] += 1
                results.append(
                    {**entry, "outcome": "rejected", "reason": exc.reason, "detail": exc.detail}
                )
                continue
            latest[item.sku] = item.version
            entry["version"] = item.version
            if (item.valid_from or 0.0) > now:
                entry["outcome"] = "scheduled"
                entry["at"] = rfc3339(item.valid_from or 0.0)
            else:
                entry["outcome"] = "pending"
            if item.valid_to is not None:
                entry["until"] = rfc3339(item.valid_to)
            results.append(entry)
            valid.append((idx, item))
        return results, valid

    def _route(self, label: str, sku: str) -> tuple[str, str]:
        """(device id, label id on that device) for a catalog label id."""
        devices = [d.id for d in self.ctx.config.devices if isinstance(d, LabelDeviceConfig)]
        if label == "?":
            raise ItemRejected("no_labels", f"SKU {sku!r} has no label ids in the catalog.")
        device, sep, rest = label.partition("/")
        if sep and device in devices:
            return device, rest
        default = self.config.default_device or (devices[0] if len(devices) == 1 else None)
        if default is None or default not in devices:
            raise ItemRejected(
                "no_label_device",
                f"Label {label!r} names no label device and there is no single default "
                "(set labels.default_device or write 'device/label' in the catalog).",
            )
        return default, label

    # -- completion ----------------------------------------------------------------------

    def _gate(self, cmd_id: str, job_ids: list[int]) -> None:
        gate = self._gates.setdefault(cmd_id, set())
        event = self._settled.setdefault(cmd_id, asyncio.Event())
        for job_id in job_ids:
            if job_id in self.uploader.jobs:
                gate.add(job_id)
                self._gate_of[job_id] = cmd_id
        if not gate:
            event.set()
        else:
            event.clear()

    def _job_settled(self, job: JobRow) -> None:
        cmd_id = self._gate_of.pop(job.id, None)
        if cmd_id is None:
            return
        gate = self._gates[cmd_id]
        gate.discard(job.id)
        if not gate:
            self._settled[cmd_id].set()

    async def _finish(self, cmd_id: str) -> dict[str, Any]:
        """Wait for the command's jobs to settle; build, store and return the final result."""
        event = self._settled.setdefault(cmd_id, asyncio.Event())
        if not self._gates.get(cmd_id):
            event.set()
        await event.wait()
        known = self.store.command(cmd_id)
        assert known is not None
        if known[1] is not None:
            return known[1]
        final = _final(known[0], self.store.report(cmd_id))
        await asyncio.to_thread(self.store.finish_command, cmd_id, final)
        self._gates.pop(cmd_id, None)
        self._settled.pop(cmd_id, None)
        return final

    async def _finish_resumed(self, cmd_id: str) -> None:
        final = await self._finish(cmd_id)
        self.counts["resumed_acks"] += 1
        body = {"cmd_id": cmd_id, "outcome": "done", "result": {**final, "resumed": True}}
        await self.ctx.final_ack("prices", body)
        log.info("Command prices %r finished after a restart; sent its ack", cmd_id)

    # -- schedules -----------------------------------------------------------------------

    async def _schedule_forever(self) -> None:
        while True:
            await self._apply_due()
            now = self.clock()
            if self._pruned_at is None or not 0 <= now - self._pruned_at < _PRUNE_EVERY:
                self._pruned_at = now
                await self._prune(now - self._keep)
            due = self.store.next_due()
            delay = _RESCHEDULE if due is None else min(_RESCHEDULE, max(0.0, due - self.clock()))
            self._schedule_changed.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._schedule_changed.wait()
            except TimeoutError:
                pass

    async def _prune(self, before: float) -> None:
        async with self._apply_lock:
            gone = await asyncio.to_thread(self.store.prune, before)
        if any(gone.values()):
            log.info(
                "Forgot %d finished price commands, %d items and %d label jobs older than %s",
                gone["commands"],
                gone["items"],
                gone["jobs"],
                rfc3339(before),
            )

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(min(_SWEEP, self.config.confirm_timeout / 4))
            self.uploader.sweep()
            self.uploader.check()

    async def _apply_due(self) -> None:
        async with self._apply_lock:
            starts, ends = self.store.due(self.clock())
            for row in starts:
                await self._start(row)
            for row in ends:
                await self._end(row)

    def _jobs_for(self, item: PriceItem, *, promo: bool) -> list[tuple[str, str, dict[str, Any]]]:
        entry = self.ctx.catalog().items.get(item.sku)
        if entry is None:
            log.warning("SKU %r left the catalog; its scheduled price is not applied", item.sku)
            return []
        content = render(item, entry.name, self.config.template, promo=promo).to_dict()
        jobs = []
        for label in entry.labels:
            try:
                device, label_id = self._route(label, item.sku)
            except ItemRejected as exc:
                log.warning("Label %r of SKU %r skipped: %s", label, item.sku, exc.detail)
                continue
            jobs.append((device, label_id, content))
        return jobs

    async def _start(self, row: ItemRow) -> list[JobRow]:
        item = row.item
        applied, _ = self.store.sku_state(item.sku)
        if applied is not None and applied > item.version:
            log.info(
                "Item %s v%d superseded by v%d before its start", item.sku, item.version, applied
            )
            await asyncio.to_thread(
                self.store.apply, row, "superseded", [], "apply", version=None, regular=False
            )
            return []
        specs = self._jobs_for(item, promo=True)
        # A durable (fsync) commit: off the event loop.
        jobs = await asyncio.to_thread(
            self.store.apply,
            row,
            "applied",
            specs,
            "apply",
            version=item.version,
            regular=item.valid_to is None,
        )
        self.uploader.add(jobs)
        return jobs

    async def _end(self, row: ItemRow) -> None:
        item = row.item
        applied, regular_id = self.store.sku_state(item.sku)
        specs: list[tuple[str, str, dict[str, Any]]] = []
        if applied is None or applied <= item.version:
            if regular_id is not None and regular_id != row.id:
                specs = self._jobs_for(self.store.item(regular_id).item, promo=True)
            else:
                specs = self._jobs_for(item, promo=False)
        jobs = await asyncio.to_thread(
            self.store.apply, row, "ended", specs, "revert", version=None, regular=False
        )
        self.uploader.add(jobs)


def _check_version(item: PriceItem, seen: int | None) -> None:
    if seen is not None and item.version <= seen:
        raise ItemRejected(
            "stale_version",
            f"Version {item.version} of SKU {item.sku!r} is not newer than version {seen} "
            "already received; it would overwrite a newer price.",
        )


def _items(params: dict[str, Any]) -> list[Any]:
    unknown = sorted(set(params) - {"items"})
    if unknown:
        raise CommandRejected(
            "invalid_value", f"Unknown parameter(s) {', '.join(unknown)}; prices takes 'items'."
        )
    items = params.get("items")
    if items is None:
        raise CommandRejected("missing_field", "'params.items' is missing: a list of price items.")
    if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
        raise CommandRejected(
            "invalid_value", f"'params.items' must be a list of 1 to {MAX_ITEMS} items."
        )
    return items


def _time(ts: float | None) -> str | None:
    return None if ts is None else rfc3339(ts)


def _final(results: list[dict[str, Any]], report: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The `done` ack's result: one entry per item, plus totals by outcome."""
    out = []
    totals: dict[str, int] = {}
    for entry in results:
        done = dict(entry)
        if entry["outcome"] == "pending":
            rep = report.get(entry["index"], {})
            states = rep.get("states", {})
            confirmed = states.get("confirmed", 0)
            if rep.get("item_state") == "superseded" or (
                states.get("superseded") and not confirmed
            ):
                done["outcome"] = "superseded"
            else:
                done["outcome"] = "applied" if confirmed else "failed"
            done["labels"] = confirmed
            if rep.get("failed"):
                done["failed"] = rep["failed"][:50]
                done["failed_count"] = len(rep["failed"])
            if rep.get("uploaded"):
                done["uploaded_at"] = rfc3339(rep["uploaded"])
            if rep.get("confirmed"):
                done["confirmed_at"] = rfc3339(rep["confirmed"])
        totals[done["outcome"]] = totals.get(done["outcome"], 0) + 1
        out.append(done)
    return {"items": out, "totals": totals}
