"""Device supervision: one task per device, restarted with backoff, never taking others down.

Devices never sit in the daemon's core TaskGroup (its first failure would cancel the
rest). Each runs in its own loop here: an exception from the driver is logged once with
the device id, counted, the device marked `failed`, and the driver run again after
`min(cap, base·2ⁿ)·uniform(0.5, 1)`; `n` resets once a run has lasted `reset_after`. A
driver that reports no health for its `hang_timeout` is cancelled (awaited with a
deadline) and restarted. `CancelledError` always propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.backoff import Backoff
from gateway.driver import Clock, Driver, DriverConfig, DriverContext
from gateway.health import Health, HealthState
from gateway.logs import DeviceLog

if TYPE_CHECKING:
    from gateway.events import Event
    from gateway.links import LinkManager
    from gateway.state import StateStore

log = logging.getLogger(__name__)

# How long a cancelled driver gets to unwind before we stop waiting for it.
CANCEL_GRACE = 5.0


class DeviceHungError(Exception):
    """The driver reported no health for its hang timeout."""


class DriverReturnedError(Exception):
    """`run()` returned: drivers loop until cancelled, so this is a bug in the driver."""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Backoff between restarts of a failing device."""

    initial: float = 1.0
    max: float = 300.0
    reset_after: float = 600.0


class DeviceRunner:
    """Runs one device's driver under supervision; owns its health record."""

    def __init__(
        self,
        config: DriverConfig,
        driver_cls: type[Driver],
        queue: asyncio.Queue[Event],
        states: StateStore,
        policy: RestartPolicy,
        clock: Clock | None = None,
        links: LinkManager | None = None,
    ) -> None:
        self.config = config
        self.driver_cls = driver_cls
        self._queue = queue
        self._states = states
        self.policy = policy
        self._clock = clock or Clock()
        self._links = links
        self.log = DeviceLog(
            logging.getLogger(f"drivers.{driver_cls.name}"),
            {"device": config.id, "driver": driver_cls.name},
        )
        self.health = Health(self.log)
        self.task: asyncio.Task[None] | None = None
        self.driver: Driver | None = None  # the running instance (actuators' `write`)
        self._seen_errors: set[str] = set()

    def start(self) -> None:
        """Start the supervision loop as a named task."""
        self.task = asyncio.create_task(self.supervise(), name=f"device:{self.config.id}")

    async def stop(self) -> None:
        """Cancel and await the device (bounded by CANCEL_GRACE)."""
        task, self.task = self.task, None
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_GRACE)
        if not task.done():
            self.log.error("Did not stop within %.0fs after cancellation", CANCEL_GRACE)

    async def supervise(self) -> None:
        """Run the driver, restarting it with backoff, until cancelled."""
        backoff = Backoff(self.policy.initial, self.policy.max)
        while True:
            self.health.starting()
            started = time.monotonic()
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = self._describe(exc)
            else:
                reason = self._describe(
                    DriverReturnedError("run() returned; drivers must loop until cancelled")
                )
            if time.monotonic() - started >= self.policy.reset_after:
                backoff.reset()
            self.health.failed(reason)
            self.health.restarts += 1
            delay = backoff.next_delay()
            self.log.warning("Driver stopped: %s; restarting in %.1fs", reason, delay)
            await asyncio.sleep(delay)

    def _describe(self, exc: Exception) -> str:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        expected = isinstance(exc, OSError | TimeoutError | DeviceHungError | DriverReturnedError)
        kind = type(exc).__qualname__
        if not expected and kind not in self._seen_errors:
            # A bug in the driver: the traceback once per exception type, then one line each.
            self._seen_errors.add(kind)
            self.log.error("Driver raised %s", kind, exc_info=exc)
        return reason

    async def _run_once(self) -> None:
        driver = self.driver = self.driver_cls(self.config)
        ctx = DriverContext(
            self.config.id,
            self.log,
            self._clock,
            self.health,
            self._states.get(f"device:{self.config.id}"),
            self._queue,
            self._links,
        )
        task = asyncio.create_task(driver.run(ctx), name=f"driver:{self.config.id}")
        hang = self.config.hang_timeout
        try:
            while True:
                remaining = self.health.last_ok_mono + hang - time.monotonic()
                if remaining <= 0:
                    raise DeviceHungError(f"no health report for {hang:g}s")
                done, _ = await asyncio.wait({task}, timeout=remaining)
                if done:
                    task.result()  # raises what the driver raised
                    return
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({task}, timeout=CANCEL_GRACE)

    def snapshot(self) -> dict[str, Any]:
        """Status row for this device."""
        h = self.health.snapshot()
        return {
            "id": self.config.id,
            "driver": self.driver_cls.name,
            "state": h.state.value,
            "reason": h.reason,
            "since": h.since,
            "restarts": h.restarts,
            "errors": h.errors,
            "last_error": h.last_error,
            "last_error_at": h.last_error_at,
            "last_ok": h.last_ok,
            "counters": h.counters,
        }


class Supervisor:
    """All device runners; applies config changes by restarting only what changed."""

    def __init__(
        self,
        queue: asyncio.Queue[Event],
        states: StateStore,
        policy: RestartPolicy,
        clock: Clock | None = None,
        links: LinkManager | None = None,
    ) -> None:
        self._queue = queue
        self._states = states
        self.policy = policy
        self._clock = clock
        self.links = links
        self.runners: dict[str, DeviceRunner] = {}
        # Devices switched off by a `device disable` command (gateway.fleet persists it).
        self.disabled: set[str] = set()

    def _runner(self, config: DriverConfig, driver_cls: type[Driver]) -> DeviceRunner:
        return DeviceRunner(
            config, driver_cls, self._queue, self._states, self.policy, self._clock, self.links
        )

    async def apply(
        self, devices: list[tuple[DriverConfig, type[Driver]]], policy: RestartPolicy | None = None
    ) -> tuple[list[str], list[str], list[str]]:
        """Start new devices, stop removed ones, restart changed ones; unchanged keep running.

        Returns (started, stopped, restarted) device ids.
        """
        if policy is not None:
            self.policy = policy
        wanted = {cfg.id: (cfg, cls) for cfg, cls in devices}
        stopped = [d for d in self.runners if d not in wanted]
        restarted = [
            d
            for d, (cfg, cls) in wanted.items()
            if d in self.runners
            and (self.runners[d].config != cfg or self.runners[d].driver_cls is not cls)
        ]
        started = [d for d in wanted if d not in self.runners]
        for device in stopped + restarted:
            await self.runners.pop(device).stop()
        for device in restarted + started:
            cfg, cls = wanted[device]
            runner = self.runners[device] = self._runner(cfg, cls)
            if device in self.disabled:
                runner.health.disabled()
            else:
                runner.start()
        for runner in self.runners.values():
            runner.policy = self.policy
        return started, stopped, restarted

    async def disable(self, device_id: str) -> None:
        """Stop one device and keep it stopped (health `disabled`) until enabled."""
        runner = self.runners[device_id]
        self.disabled.add(device_id)
        await runner.stop()
        runner.health.disabled()

    async def enable(self, device_id: str) -> None:
        """Start a disabled device again (nothing happens to a running one)."""
        runner = self.runners[device_id]
        self.disabled.discard(device_id)
        if runner.task is None or runner.task.done():
            runner.start()

    async def restart(self, device_id: str) -> None:
        """Stop and start one device now (a disabled device stays disabled)."""
        runner = self.runners[device_id]
        if device_id in self.disabled:
            return
        await runner.stop()
        runner.start()

    async def stop_all(self) -> None:
        """Stop every device concurrently."""
        await asyncio.gather(*(r.stop() for r in self.runners.values()))

    def counts(self) -> dict[str, int]:
        """How many devices are in each health state."""
        out = {s.value: 0 for s in HealthState}
        for runner in self.runners.values():
            out[runner.health.state.value] += 1
        return out

    def snapshot(self) -> list[dict[str, Any]]:
        """Status rows, in config order."""
        return [r.snapshot() for r in self.runners.values()]
