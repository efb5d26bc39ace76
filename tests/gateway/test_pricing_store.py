"""The pricing store forgets finished history, and keeps everything still needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.price_items import PriceItem
from gateway.pricing_store import ItemRow, PricingStore

if TYPE_CHECKING:
    from pathlib import Path

DAY = 86_400.0
NOW = 1_800_000_000.0
OLD = NOW - 10 * DAY  # received before the 7-day window


def _command(
    store: PricingStore,
    cmd_id: str,
    item: PriceItem,
    *,
    received: float = OLD,
    state: str = "applied",
    job_state: str = "confirmed",
    regular: bool = False,
    finished: bool = True,
) -> int:
    """Store a command with one item moved to `state`, its one label job in `job_state`.

    Each command has a label of its own (a job supersedes active jobs of the same label)."""
    ids = store.add_command(cmd_id, received, [{"outcome": "ok"}], [(0, item)])
    row = ItemRow(ids[0], cmd_id, 0, item, "waiting")
    version = item.version if state == "applied" else None
    jobs = [("ap", f"label-{cmd_id}", {"price": item.price})]
    for job in store.apply(row, state, jobs, "apply", version=version, regular=regular):
        job.state = job_state
        store.update_job(job)
    if finished:
        store.finish_command(cmd_id, {"items": []})
    return ids[0]


def test_prune_forgets_finished_history_and_keeps_what_is_still_needed(tmp_path: Path) -> None:
    store = PricingStore(tmp_path / "labels.sqlite")
    store.open()
    try:
        # SKU 1: two regular prices; the first is history, the second is what a revert needs.
        _command(store, "a", PriceItem("1", "1.00", "EUR", 1), regular=True)
        regular = _command(store, "b", PriceItem("1", "1.10", "EUR", 2), regular=True)
        # SKU 2: a promotion that still has to end on time.
        _command(store, "c", PriceItem("2", "2.00", "EUR", 1, "1.50", valid_to=NOW + DAY))
        # SKU 3: an ended promotion (history), and one whose revert upload is still pending.
        _command(store, "d", PriceItem("3", "3.00", "EUR", 1), state="ended", job_state="failed")
        _command(store, "g", PriceItem("3", "3.00", "EUR", 2), state="ended", job_state="pending")
        # Not finished, or recent: all kept.
        _command(store, "e", PriceItem("4", "4.00", "EUR", 1), state="ended", finished=False)
        _command(store, "f", PriceItem("5", "5.00", "EUR", 1), state="ended", received=NOW)
        # A future start, stored long ago (no jobs until it starts).
        item = PriceItem("6", "6.00", "EUR", 1, valid_from=NOW + DAY)
        store.add_command("h", OLD, [{"outcome": "scheduled"}], [(0, item)])
        store.finish_command("h", {"items": []})

        gone = store.prune(NOW - 7 * DAY)

        # Commands a and d with their items; the finished jobs of a, b, c and d.
        assert gone == {"commands": 2, "items": 2, "jobs": 4}
        assert store.command("a") is None
        assert store.command("d") is None
        for kept in ("b", "c", "e", "f", "g", "h"):
            assert store.command(kept) is not None, kept
        assert store.sku_state("1") == (2, regular)
        assert store.item(regular).item.price == "1.10"  # what a later revert renders
        assert [j.label for j in store.active_jobs()] == ["label-g"]  # g's pending upload
        due_start, due_end = store.due(NOW + 2 * DAY)
        assert [r.cmd_id for r in due_start] == ["h"]
        assert [r.cmd_id for r in due_end] == ["c"]
        # Recent and unfinished commands keep their label history for their acks.
        assert store.report("f")[0]["states"] == {"confirmed": 1}
        assert store.report("e")[0]["states"] == {"confirmed": 1}
        assert store.prune(NOW - 7 * DAY) == {"commands": 0, "items": 0, "jobs": 0}
    finally:
        store.close()
