"""Supervision: a crashing or hanging driver is restarted with backoff; the others go on."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import pytest

from gateway import Driver, DriverConfig, DriverContext, Reading
from gateway.backoff import Backoff
from gateway.health import HealthState
from gateway.state import StateStore
from gateway.supervisor import RestartPolicy, Supervisor


class TickConfig(DriverConfig):
    driver: Literal["tick"] = "tick"
    crash_after: int | None = None  # ticks before raising
    hang_after: int | None = None  # ticks before hanging


class Tick(Driver):
    name = "tick"
    summary = "test driver"
    Config = TickConfig

    async def run(self, ctx: DriverContext) -> None:
        cfg = self.config
        assert isinstance(cfg, TickConfig)
        n = 0
        while True:
            ts, mono = ctx.clock.now()
            await ctx.emit(Reading(ctx.device_id, "n", n, "", ts, mono))
            ctx.health.ok()
            n += 1
            if cfg.crash_after is not None and n >= cfg.crash_after:
                raise RuntimeError("boom")
            if cfg.hang_after is not None and n >= cfg.hang_after:
                await asyncio.Event().wait()
            await asyncio.sleep(0.01)


@pytest.fixture
def states(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    store.open()
    yield store
    store.close()


async def drain_counts(queue: asyncio.Queue, seconds: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(left):
                ev = await queue.get()
        except TimeoutError:
            break
        counts[ev.device] = counts.get(ev.device, 0) + 1
    return counts


async def test_crashing_driver_restarts_with_growing_delays_others_unaffected(states) -> None:
    queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)
    sup = Supervisor(queue, states, RestartPolicy(initial=0.05, max=0.4, reset_after=60))
    await sup.apply(
        [
            (TickConfig(id="good", driver="tick"), Tick),
            (TickConfig(id="bad", driver="tick", crash_after=2), Tick),
        ]
    )
    try:
        counts = await drain_counts(queue, 1.5)
    finally:
        await sup.stop_all()
    bad = sup.runners["bad"].health
    good = sup.runners["good"].health
    assert good.state is HealthState.OK and good.restarts == 0
    # Delays 0.05, 0.1, 0.2, 0.4, 0.4 (each times 0.5 to 1): in 1.5 s it restarts a few times, not dozens.
    assert 2 <= bad.restarts <= 12
    assert bad.last_error == "RuntimeError: boom"
    assert counts["good"] > 50  # the healthy device kept producing throughout


async def test_hanging_driver_is_cancelled_and_restarted(states) -> None:
    queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)
    sup = Supervisor(queue, states, RestartPolicy(initial=0.05, max=0.1, reset_after=60))
    cfg = TickConfig(id="hang", driver="tick", hang_after=1, hang_timeout="1s")
    await sup.apply([(cfg, Tick)])
    try:
        deadline = time.monotonic() + 5
        while sup.runners["hang"].health.restarts < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await sup.stop_all()
    health = sup.runners["hang"].health
    assert health.restarts >= 2
    assert "no health report" in (health.last_error or "")


async def test_apply_restarts_only_changed_devices(states) -> None:
    queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)
    sup = Supervisor(queue, states, RestartPolicy())
    a, b = TickConfig(id="a", driver="tick"), TickConfig(id="b", driver="tick")
    await sup.apply([(a, Tick), (b, Tick)])
    task_a = sup.runners["a"].task
    started, stopped, restarted = await sup.apply(
        [
            (a, Tick),
            (TickConfig(id="b", driver="tick", zone="z"), Tick),
            (TickConfig(id="c", driver="tick"), Tick),
        ]
    )
    assert (started, stopped, restarted) == (["c"], [], ["b"])
    assert sup.runners["a"].task is task_a  # untouched
    started, stopped, restarted = await sup.apply([(a, Tick)])
    assert stopped == ["b", "c"]
    await sup.stop_all()


async def test_driver_returning_is_a_failure(states) -> None:
    class Quits(Tick):
        async def run(self, ctx: DriverContext) -> None:
            ctx.health.ok()

    queue: asyncio.Queue = asyncio.Queue(maxsize=100)
    sup = Supervisor(queue, states, RestartPolicy(initial=0.05, max=0.05))
    await sup.apply([(TickConfig(id="q", driver="tick"), Quits)])
    deadline = time.monotonic() + 3
    while sup.runners["q"].health.errors < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await sup.stop_all()
    assert "returned" in (sup.runners["q"].health.last_error or "")


def test_backoff_grows_caps_and_has_a_floor() -> None:
    b = Backoff(1.0, 8.0)
    delays = [b.next_delay() for _ in range(8)]
    nominal = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(n * 0.5 <= d <= n for d, n in zip(delays, nominal, strict=True))
    b.reset()
    assert b.next_delay() <= 1.0


def test_driver_without_required_attributes_is_refused() -> None:
    with pytest.raises(TypeError, match="lacks"):

        class Broken(Driver):  # no name/summary/Config
            async def run(self, ctx: DriverContext) -> None:
                pass
