"""Uploads label jobs to label drivers, one device at a time, and settles them on confirmations.

One worker task per label device takes its ready jobs in order: at most one upload in
flight per access point and `labels.pause` between uploads (protocols.md §5.1: the Home
Assistant integration serialises uploads, >= 1 s apart). A job becomes `sent` when the
driver's `write()` returned (accepted), `confirmed` when the driver reports the label
`displayed` at or after the upload started, and goes back to `pending` with backoff when
the upload was refused, the label system reported `failed` (OEPL `xfer timeout`: the AP
dropped the content) or no confirmation came within `labels.confirm_timeout`; after
`labels.retry.attempts` uploads it is `failed` with the last reason. A confirmed job is
never uploaded again.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import time
from typing import TYPE_CHECKING

from gateway.actuator import (
    LabelContent,
    LabelJob,
    LabelState,
    LabelStatus,
    LabelWriteError,
    LabelWriter,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.config.labels import LabelsConfig
    from gateway.pricing_store import JobRow, PricingStore
    from gateway.supervisor import Supervisor

log = logging.getLogger(__name__)

TERMINAL = ("confirmed", "failed", "superseded")
# A device that is configured but not (yet) running: look again this often, no attempt spent.
_NOT_RUNNING_DELAY = 1.0


class LabelUploader:
    """The active jobs, their per-device workers, and the confirmation bookkeeping."""

    def __init__(
        self,
        store: PricingStore,
        supervisor: Supervisor,
        config: LabelsConfig,
        on_terminal: Callable[[JobRow], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.supervisor = supervisor
        self.config = config
        self._on_terminal = on_terminal
        self._clock = clock
        self.jobs: dict[int, JobRow] = {}
        self._label_job: dict[tuple[str, str], int] = {}
        self._since: dict[int, float] = {}  # job id → when its current upload started
        self._early: dict[int, LabelStatus] = {}  # statuses that arrived during the upload
        self._inflight: set[int] = set()
        self._ready: dict[str, collections.deque[int]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._rng = random.Random()
        self.counts: collections.Counter[str] = collections.Counter()

    # -- adding jobs ---------------------------------------------------------------------

    def add(self, jobs: list[JobRow]) -> None:
        """Track new (or resumed) jobs; an older active job of the same label is superseded."""
        now = self._clock()
        for job in jobs:
            key = (job.device, job.label)
            old = self._label_job.get(key)
            if old is not None and old != job.id and old in self.jobs:
                # The store already marked it superseded in the same transaction.
                self._settle(self.jobs[old], "superseded", persist=False)
            self.jobs[job.id] = job
            self._label_job[key] = job.id
            if job.state == "sent":
                self._since[job.id] = job.uploaded or now
            elif job.next_try > now:
                self._later(job.next_try - now, job)
            else:
                self._queue(job)

    def _queue(self, job: JobRow) -> None:
        device = job.device
        self._ready.setdefault(device, collections.deque()).append(job.id)
        wake = self._wake.setdefault(device, asyncio.Event())
        wake.set()
        if device not in self._workers:
            self._workers[device] = asyncio.create_task(
                self._worker(device), name=f"pricing:upload:{device}"
            )

    def _later(self, delay: float, job: JobRow) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            if self.jobs.get(job.id) is job and job.state == "pending":
                self._queue(job)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def close(self) -> None:
        """Stop the workers and timers (jobs stay in the store and resume at next start)."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        workers = list(self._workers.values())
        self._workers.clear()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    # -- the device workers --------------------------------------------------------------

    def _driver(self, device: str) -> LabelWriter | None:
        runner = self.supervisor.runners.get(device)
        driver = runner.driver if runner is not None else None
        if not isinstance(driver, LabelWriter) or runner is None or runner.task is None:
            return None
        if driver.watched != self.on_status:
            driver.watch(self.on_status)  # a restarted driver is a new instance
        return driver

    async def _worker(self, device: str) -> None:
        ready, wake = self._ready[device], self._wake[device]
        while True:
            while not ready:
                wake.clear()
                await wake.wait()
            job = self.jobs.get(ready.popleft())
            if job is None or job.state != "pending":
                continue
            driver = self._driver(device)
            if driver is None:
                if device not in self.supervisor.runners:
                    self._fail(job, f"label device {device!r} is not configured")
                else:
                    self._later(_NOT_RUNNING_DELAY, job)
                continue
            await self._upload(driver, job)
            if self.config.pause > 0:
                await asyncio.sleep(self.config.pause)

    async def _upload(self, driver: LabelWriter, job: JobRow) -> None:
        started = self._clock()
        self._since[job.id] = started
        self._inflight.add(job.id)
        content = LabelContent(**job.content)
        try:
            async with asyncio.timeout(self.config.upload_timeout):
                result = await driver.write(LabelJob(job.id, job.label, content))
        except LabelWriteError as exc:
            self._retry(job, exc.reason, retry=exc.retry)
            return
        except TimeoutError:
            self._retry(job, f"upload timed out after {self.config.upload_timeout:g}s", retry=True)
            return
        except Exception as exc:
            log.exception("Label driver of %s failed on label %s", job.device, job.label)
            self._retry(job, f"driver error: {type(exc).__name__}", retry=True)
            return
        finally:
            self._inflight.discard(job.id)
        if self.jobs.get(job.id) is not job:
            return  # superseded while uploading
        self.counts["uploads"] += 1
        job.state = "sent"
        job.uploaded = result.accepted_at
        early = self._early.pop(job.id, None)
        if early is not None:
            self._observe(job, early)
        if job.state == "sent":
            self.store.update_job(job)

    # -- confirmations -------------------------------------------------------------------

    def on_status(self, status: LabelStatus) -> None:
        """A driver's report about a label (the listener installed with `watch()`)."""
        job_id = self._label_job.get((status.device, status.label))
        job = self.jobs.get(job_id) if job_id is not None else None
        if job is None:
            return
        if job.id in self._inflight:
            self._early[job.id] = status  # settled once write() returns
            return
        if job.state == "sent":
            self._observe(job, status)

    def _observe(self, job: JobRow, status: LabelStatus) -> None:
        since = self._since.get(job.id, job.uploaded or 0.0)
        # OEPL reports `updatelast` in whole seconds: a confirmation in the second the upload
        # started counts (protocols.md §5.1 acknowledgement rule).
        if status.at < math.floor(since):
            return
        if status.state is LabelState.DISPLAYED:
            # Reported as when the gateway learned it: `at` may be whole AP seconds.
            self._settle(job, "confirmed", confirmed=self._clock())
        else:
            self._retry(job, status.reason or "label system reported a failure", retry=True)

    def sweep(self) -> None:
        """Upload again the sent jobs whose confirmation is overdue."""
        limit = self._clock() - self.config.confirm_timeout
        overdue = [
            j
            for j in self.jobs.values()
            if j.state == "sent" and self._since.get(j.id, 0.0) < limit
        ]
        for job in overdue:
            self._retry(job, f"not confirmed within {self.config.confirm_timeout:g}s", retry=True)

    # -- transitions ---------------------------------------------------------------------

    def _retry(self, job: JobRow, reason: str, *, retry: bool) -> None:
        job.attempts += 1
        self._early.pop(job.id, None)
        if not retry or job.attempts >= self.config.retry.attempts:
            self._fail(job, reason)
            return
        cfg = self.config.retry
        delay = min(cfg.max, cfg.initial * 2 ** (job.attempts - 1)) * self._rng.uniform(0.5, 1.0)
        job.state = "pending"
        job.next_try = self._clock() + delay
        self.counts["retries"] += 1
        log.info("Label %s/%s: %s; uploading again in %.1fs", job.device, job.label, reason, delay)
        self.store.update_job(job, reason=reason)
        self._later(delay, job)

    def _fail(self, job: JobRow, reason: str) -> None:
        log.warning("Label %s/%s failed: %s", job.device, job.label, reason)
        self._settle(job, "failed", reason=reason)

    def _settle(
        self,
        job: JobRow,
        state: str,
        *,
        reason: str | None = None,
        confirmed: float | None = None,
        persist: bool = True,
    ) -> None:
        job.state = state
        self.counts[state] += 1
        if persist:
            self.store.update_job(job, reason=reason, confirmed=confirmed)
        self.jobs.pop(job.id, None)
        self._since.pop(job.id, None)
        self._early.pop(job.id, None)
        key = (job.device, job.label)
        if self._label_job.get(key) == job.id:
            del self._label_job[key]
        self._on_terminal(job)

    def check(self) -> None:
        """Raise what a worker raised: a dead worker is a bug (the daemon stops in order)."""
        for task in self._workers.values():
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(
                    f"label upload worker {task.get_name()} died"
                ) from task.exception()

    def stats(self) -> dict[str, int]:
        """Active jobs by state and counters since start."""
        active = collections.Counter(j.state for j in self.jobs.values())
        return {"pending": active["pending"], "sent": active["sent"], **self.counts}
