"""Where the pipeline's output goes: the outbox (to the cloud), the console, or nowhere.

Every sink takes a topic suffix (`telemetry`, `events/sales`, ...), a payload body without
the envelope, and a delivery class; it stamps `id`/`ts`/`gw` itself. `send` returns once
the sink has taken the message; for the outbox that is when it is queued for the next
group commit, and `drain()` waits until everything taken is committed.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from gateway.outbox import DeliveryClass
from gateway.payloads import Stamper, encode

if TYPE_CHECKING:
    from gateway.outbox import Outbox

BUSINESS = "business"
TELEMETRY = "telemetry"


class Sink(Protocol):
    """The pipeline's output."""

    async def send(
        self, topic: str, body: dict[str, Any], cls: str, ts: float | None = None
    ) -> None:
        """Take one message (body without `id`, `ts`, `gw`)."""

    async def drain(self) -> None:
        """Wait until every message taken so far is safe."""


class ConsoleSink:
    """One JSON line per message on stdout: `topic payload` (for `storegw run` without MQTT)."""

    def __init__(self, stamper: Stamper, prefix: str, out: TextIO | None = None) -> None:
        self._stamper = stamper
        self._prefix = prefix
        self._out = out or sys.stdout

    async def send(
        self,
        topic: str,
        body: dict[str, Any],
        cls: str,  # noqa: ARG002 - the console shows every class alike
        ts: float | None = None,
    ) -> None:
        """Print the stamped message."""
        payload = encode(self._stamper.stamp(body, ts)).decode()
        self._out.write(f"{self._prefix}/{topic} {payload}\n")
        self._out.flush()

    async def drain(self) -> None:
        """Nothing is buffered."""


class NullSink:
    """Counts and discards (benchmarks)."""

    def __init__(self) -> None:
        self.count = 0

    async def send(
        self,
        topic: str,  # noqa: ARG002
        body: dict[str, Any],  # noqa: ARG002
        cls: str,  # noqa: ARG002
        ts: float | None = None,  # noqa: ARG002
    ) -> None:
        """Count it."""
        self.count += 1

    async def drain(self) -> None:
        """Nothing is buffered."""


class OutboxSink:
    """Stamps, encodes and puts messages into the durable outbox.

    `send` does not wait for the commit (a burst of sales must not be serialised behind
    one fsync each); at most `max_pending` puts are outstanding, beyond that `send` waits
    (back-pressure, not loss).
    """

    def __init__(self, stamper: Stamper, outbox: Outbox, max_pending: int = 1000) -> None:
        self._stamper = stamper
        self._outbox = outbox
        self._pending: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_pending)
        self.failed = 0

    async def send(
        self, topic: str, body: dict[str, Any], cls: str, ts: float | None = None
    ) -> None:
        """Queue one message for the outbox."""
        payload = encode(self._stamper.stamp(body, ts))
        await self._slots.acquire()
        task = asyncio.create_task(
            self._put(topic, payload, DeliveryClass(cls)), name=f"outbox:put:{topic}"
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put(self, topic: str, payload: bytes, cls: DeliveryClass) -> None:
        try:
            await self._outbox.put(topic, payload, cls)
        except Exception:
            # OutboxFull (disk floor reached) is counted by the outbox and reported in status;
            # the pipeline must keep running for the messages that still fit.
            self.failed += 1
        finally:
            self._slots.release()

    async def drain(self) -> None:
        """Wait for every queued put to be committed."""
        while self._pending:
            await asyncio.wait(set(self._pending))
