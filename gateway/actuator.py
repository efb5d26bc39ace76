"""The actuator interface for shelf-label drivers: upload content, report confirmations later.

A label driver is a normal `Driver` (its `run()` keeps the connection to the label system
and learns what the labels show) that also implements `LabelWriter`::

    class MyEsl(Driver, LabelWriter):
        name = "my_esl"
        summary = "ACME ESL server"
        Config = MyEslConfig

        async def write(self, job: LabelJob) -> WriteResult:
            # returns once the label system ACCEPTED the content (HTTP 200 / a request id);
            # raise LabelWriteError(reason, retry=True) for 409/5xx/timeouts, retry=False for
            # "no such label"
            ...
            return WriteResult(accepted_at=time.time())

        async def run(self, ctx: DriverContext) -> None:
            ...  # listen or poll; when a label shows the content:
            self.report(LabelStatus(ctx.device_id, mac, LabelState.DISPLAYED, at=ts))

Why two steps (contract.md "Labels", protocols.md §5): every ESL system is asynchronous —
OpenEPaperLink queues content until the tag's next check-in, commercial servers answer with
a request id and update the label minutes later. `write()` therefore only means *accepted*;
*displayed* or *failed* arrive later through `report()`, which calls the listener the
pricing service installed with `watch()`. A `DISPLAYED` status whose `at` is earlier than
the upload started is not a confirmation of that upload (pricing compares the times), so a
driver may report every "label is up to date" observation without knowing which job it
belongs to; `FAILED` (e.g. OEPL's `xfer timeout`, where the AP drops the content) makes the
pricing service upload again.

The running instance is `supervisor.runners[device_id].driver`; a restarted driver is a new
instance, so the pricing service calls `watch()` again whenever the instance changes.
Pricing serialises writes per device (one at a time, with the configured pause), so a
driver needs no locking of its own for `write()`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TypeAlias

from gateway.driver import DriverConfig

__all__ = [
    "LabelContent",
    "LabelDeviceConfig",
    "LabelJob",
    "LabelState",
    "LabelStatus",
    "LabelWriteError",
    "LabelWriter",
    "StatusListener",
    "WriteResult",
]


class LabelDeviceConfig(DriverConfig):
    """Base of a label driver's `Config`: marks the device as a label system for pricing.

    The pricing service is enabled when a device's config is one of these (it sees configs,
    not driver classes, when the daemon builds services).
    """


@dataclass(frozen=True, slots=True)
class LabelContent:
    """What one label must show: the item's data and its texts rendered by the template.

    Money stays a decimal string (contract.md "Uplink payloads"); `texts` holds the lines the
    `labels.template` produced (`title`, `price`, `promo`, `unit_price`), so a driver that
    draws (OpenEPaperLink) places them and a driver that sends item data (a commercial ESL
    server) may send either.
    """

    sku: str
    name: str
    price: str
    currency: str
    version: int
    promo_price: str | None = None
    unit_price: str | None = None
    unit_basis: str | None = None
    texts: dict[str, str] = field(default_factory=dict)

    def digest(self) -> str:
        """A short stable hash of the content (idempotency key per label and content)."""
        raw = json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy (the job store keeps it)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LabelJob:
    """One upload to one label: the job's id in the pricing store, the label id, the content."""

    job_id: int
    label: str
    content: LabelContent


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The label system accepted the upload at `accepted_at` (UTC epoch seconds)."""

    accepted_at: float
    reference: str | None = None


class LabelWriteError(Exception):
    """An upload was not accepted; `retry` says whether trying again later may help."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class LabelState(StrEnum):
    """What a label system reported about a label."""

    DISPLAYED = "displayed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LabelStatus:
    """An observation about one label: it shows its latest content since `at`, or it failed."""

    device: str
    label: str
    state: LabelState
    at: float
    reason: str | None = None


StatusListener: TypeAlias = Callable[[LabelStatus], None]


class LabelWriter(ABC):
    """Mixin for label drivers (subclass `Driver` and this): `write()` plus status reports."""

    _listener: StatusListener | None = None

    @abstractmethod
    async def write(self, job: LabelJob) -> WriteResult:
        """Upload `job.content` to `job.label`; return when the label system accepted it."""

    def watch(self, listener: StatusListener | None) -> None:
        """Install the receiver of status reports (the pricing service; None to detach)."""
        self._listener = listener

    @property
    def watched(self) -> StatusListener | None:
        """The installed listener, if any."""
        return self._listener

    def report(self, status: LabelStatus) -> None:
        """Hand a status to the listener (dropped when nobody listens: the job will time out)."""
        listener = self._listener
        if listener is not None:
            listener(status)
