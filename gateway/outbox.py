"""The durable outbox: everything bound for the cloud waits here until the broker's PUBACK.

`put()` returns only after the SQLite COMMIT holding the message returned (group commit:
every put arriving within `commit_interval` shares one transaction, done on a worker thread
so the event loop never blocks on fsync). The uplink takes batches with `next_batch()`,
deletes with `ack()` after PUBACK, and calls `release()` after a disconnect so that the
un-acknowledged messages are sent again, oldest first (at-least-once, design.md "Outbox").
Classes and drops follow contract.md "Delivery classes and limits"; docs/outbox.md says
what the durability level guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.outbox_store import CLASSES, DeliveryClass, Incoming, Store, Stored

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

__all__ = ["DeliveryClass", "Outbox", "OutboxFull", "Stored"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class OutboxFull(Exception):  # noqa: N818 - the name says what the caller must count
    """A business message could not be stored: free disk is below `min_free_disk`."""


class Outbox:
    """A durable SQLite queue with group commit, delivery classes and bounded size."""

    def __init__(
        self,
        path: Path,
        *,
        max_size: int,
        min_free_disk: int,
        commit_interval: float,
        ttl: Mapping[DeliveryClass, float | None],
        max_pending: int = 10_000,
    ) -> None:
        self._store = Store(path, max_size=max_size, min_free_disk=min_free_disk)
        self._commit_interval = commit_interval
        self._ttl = {cls: s for cls, s in ttl.items() if s is not None}
        self._max_pending = max_pending
        self._puts: list[tuple[Incoming, asyncio.Future[str]]] = []
        self._acks: list[int] = []
        self._ack_waiters: list[asyncio.Future[None]] = []
        self._first_at = 0.0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._avail = asyncio.Event()
        self._cursor = dict.fromkeys(CLASSES, 0)
        self._gen = 0
        self._closing = False
        self._exec: ThreadPoolExecutor | None = None
        self._writer: asyncio.Task[None] | None = None

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._exec is None:
            raise RuntimeError("outbox is not open")
        return await asyncio.get_running_loop().run_in_executor(self._exec, fn, *args)

    async def open(self) -> None:
        """Open or create the database; a corrupt or unreadable file is moved aside."""
        # One thread owns the connection: SQLite calls are serialised without locks.
        self._exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        try:
            await self._run(self._store.open)
        except sqlite3.DatabaseError as exc:
            await self._run(self._store.close)
            aside = await self._run(self._move_aside)
            log.error(
                "Outbox %s is unreadable (%s): moved it aside to %s and started an empty one",
                self._store.path,
                exc,
                aside,
            )
            await self._run(self._store.open)
        self._closing = False
        self._writer = asyncio.create_task(self._write_loop(), name="outbox:writer")
        self._avail.set()

    def _move_aside(self) -> Path:
        path = self._store.path
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = path.with_name(path.name + suffix)
            if src.exists():
                src.rename(aside.with_name(aside.name + suffix))
        return aside

    async def close(self) -> None:
        """Commit what is pending, stop the writer and close the database."""
        if self._writer is not None:
            self._closing = True
            self._wake.set()
            await self._writer
            self._writer = None
        if self._exec is not None:
            await self._run(self._store.close)
            self._exec.shutdown(wait=True)
            self._exec = None

    async def put(
        self, topic: str, payload: bytes, cls: DeliveryClass, *, retain: bool = False
    ) -> None:
        """Store one message; returns after the COMMIT holding it returned."""
        while len(self._puts) >= self._max_pending:  # back-pressure, not loss
            self._room.clear()
            await self._room.wait()
        if self._writer is None or self._closing:
            raise RuntimeError("outbox is not open")
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if not self._puts:
            self._first_at = time.monotonic()
        self._puts.append((Incoming(topic, payload, cls, retain, time.time()), fut))
        self._wake.set()
        if await fut == "full":
            raise OutboxFull(
                f"free disk below {self._store.min_free_disk} bytes: business message refused"
            )

    async def ack(self, seqs: Iterable[int]) -> None:
        """Delete messages the broker acknowledged (group-committed with the puts)."""
        before = len(self._acks)
        self._acks.extend(seqs)
        if len(self._acks) == before:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ack_waiters.append(fut)
        if not self._puts:
            self._first_at = time.monotonic()
        self._wake.set()
        await fut

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            if not self._puts and not self._acks:
                self._wake.clear()
                if self._closing:
                    return
                continue
            await self._linger()
            await self._commit_once()

    async def _linger(self) -> None:
        """Wait for more puts to join this transaction, but only while more are coming.

        Producers woken by the previous commit put again within a few loop iterations; once
        an iteration passes with nothing new, nobody else is about to put and waiting longer
        would only add latency. `commit_interval` caps the wait; `max_pending` ends it.
        """
        deadline = self._first_at + self._commit_interval
        while not self._closing and len(self._puts) < self._max_pending:
            queued = len(self._puts) + len(self._acks)
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(0)
            if len(self._puts) + len(self._acks) == queued:
                return

    async def _commit_once(self) -> None:
        puts, self._puts = self._puts, []
        acks, self._acks = self._acks, []
        waiters, self._ack_waiters = self._ack_waiters, []
        self._room.set()
        try:
            await self._run(self._store.commit, [p for p, _ in puts], acks, self._ttl)
        except Exception as exc:
            # A failing disk must not kill the writer: every caller of this batch gets the
            # error and counts it; later batches try again.
            log.error("Outbox commit failed: %s", exc)
            for fut in [f for _, f in puts] + waiters:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for item, fut in puts:
            if not fut.done():
                fut.set_result(item.outcome)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._avail.set()

    def _available(self) -> list[DeliveryClass]:
        c = self._store.counters
        return [cls for cls in CLASSES if c.rows[cls] > 0 and c.max_seq[cls] > self._cursor[cls]]

    async def next_batch(self, limit: int) -> list[Stored]:
        """Messages not in flight, each class in order; waits until there is at least one."""
        while True:
            avail = self._available()
            if not avail:
                self._avail.clear()
                await self._avail.wait()
                continue
            gen = self._gen
            # Fair share between classes, each read FIFO from its own cursor.
            quota = max(1, limit // len(avail))
            tops = {cls: self._store.counters.max_seq[cls] for cls in avail}
            reads = [(cls, self._cursor[cls], quota) for cls in avail]
            got = await self._run(self._read, reads)
            if gen != self._gen:  # release() happened meanwhile: read again from the start
                continue
            out: list[Stored] = []
            for cls, rows in zip(avail, got, strict=True):
                # An empty read means the rows were dropped or acked: skip past them.
                self._cursor[cls] = rows[-1].seq if rows else max(self._cursor[cls], tops[cls])
                out.extend(rows)
            if out:
                out.sort(key=lambda m: m.seq)
                return out

    def _read(self, reads: list[tuple[DeliveryClass, int, int]]) -> list[list[Stored]]:
        return [self._store.read(cls, after, n) for cls, after, n in reads]

    def release(self) -> None:
        """Make every handed-out, un-acked message available again, oldest first."""
        self._gen += 1
        self._cursor = dict.fromkeys(CLASSES, 0)
        self._avail.set()

    def stats(self) -> dict[str, Any]:
        """Depth, oldest age and bytes per class, bytes on disk, drops by reason, commits."""
        c = self._store.counters
        now = time.time()
        return {
            "depth": {str(cls): c.rows[cls] for cls in CLASSES},
            "oldest_age_s": {
                str(cls): None if (t := c.oldest[cls]) is None else round(now - t, 3)
                for cls in CLASSES
            },
            "bytes": {str(cls): c.bytes[cls] for cls in CLASSES},
            "max_size": self._store.max_size,
            "file_bytes": self._store.file_bytes() if self._exec is not None else 0,
            "dropped": dict(c.dropped),
            "commits": c.commits,
            "rows_written": c.rows_written,
            "pending": len(self._puts),
        }
