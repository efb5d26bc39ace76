"""Health of one device or service: a small state machine reported by its owner.

States (contract.md): `starting`, `ok`, `degraded`, `failed`, `disabled`. The owner (a
driver through `ctx.health`, or the supervisor) moves it; readers (status, metrics,
systemd STATUS=) take snapshots. Transitions are logged once each way, never per poll.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging


class HealthState(StrEnum):
    """Where a device or service stands."""

    STARTING = "starting"
    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """A copy of a health record at one moment, safe to serialise."""

    state: HealthState
    reason: str | None
    since: float
    last_error: str | None
    last_error_at: float | None
    restarts: int
    errors: int
    last_ok: float | None
    counters: dict[str, int]


class Health:
    """The mutable health record of one device; drivers call `ok()` and `degraded()`.

    `ok()` is also the liveness signal the supervisor's hang detector watches: a driver
    that has not called it for its `hang_timeout` is restarted.
    """

    __slots__ = (
        "_log",
        "counters",
        "errors",
        "last_error",
        "last_error_at",
        "last_ok",
        "last_ok_mono",
        "reason",
        "restarts",
        "since",
        "state",
    )

    def __init__(self, log: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
        self._log = log
        self.state = HealthState.STARTING
        self.reason: str | None = None
        self.since = time.time()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_ok_mono = time.monotonic()
        self.last_ok: float | None = None
        self.restarts = 0
        self.errors = 0
        self.counters: dict[str, int] = {}

    def count(self, name: str, n: int = 1) -> None:
        """Count something about the device (`polls`, `timeouts`, `crc_errors`...): shown in
        status and metrics, never logged."""
        self.counters[name] = self.counters.get(name, 0) + n

    def _move(self, state: HealthState, reason: str | None) -> None:
        if state is self.state and reason == self.reason:
            return
        previous = self.state
        self.state, self.reason, self.since = state, reason, time.time()
        if state is HealthState.OK and previous in (HealthState.DEGRADED, HealthState.FAILED):
            self._log.info("Recovered")
        elif state is HealthState.DEGRADED and previous is not HealthState.DEGRADED:
            self._log.warning("Degraded: %s", reason)

    def ok(self) -> None:
        """The device works (and the driver is alive): call it after each good poll or read."""
        self.last_ok_mono = time.monotonic()
        self.last_ok = time.time()
        if self.state is not HealthState.OK:
            self._move(HealthState.OK, None)

    def degraded(self, reason: str) -> None:
        """The driver runs but the device misbehaves (timeouts, bad frames): say why."""
        self.last_ok_mono = time.monotonic()
        self._move(HealthState.DEGRADED, reason)

    def failed(self, error: str) -> None:
        """The driver stopped with an error (set by the supervisor)."""
        self.errors += 1
        self.last_error, self.last_error_at = error, time.time()
        self._move(HealthState.FAILED, error)

    def starting(self) -> None:
        """The driver is (re)starting."""
        self.last_ok_mono = time.monotonic()
        self._move(HealthState.STARTING, None)

    def disabled(self) -> None:
        """The device is switched off by an operator."""
        self._move(HealthState.DISABLED, None)

    def snapshot(self) -> HealthSnapshot:
        """A copy for status and metrics."""
        return HealthSnapshot(
            self.state,
            self.reason,
            self.since,
            self.last_error,
            self.last_error_at,
            self.restarts,
            self.errors,
            self.last_ok,
            dict(self.counters),
        )
