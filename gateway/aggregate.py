"""Tumbling windows per device, aligned to the wall clock (every 60 s on the minute).

Raw readings stay on the gateway; one telemetry message per device per window goes up,
holding every metric of that device (contract.md): count, sum, min, max, mean and last for
gauges; for cumulative counters (energy, water) the window's delta, which survives a
counter reset (the meter restarted from zero) and a rollover at a known `wrap` value.

A window closes when the first reading of a later window arrives for that device, or on
the timer (`flush_due`), whichever is first. A reading older than the device's open window
(a slow poll answered after the window closed) is counted as late and folded into the
open window, so counter deltas are never lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gateway.events import Quality, Reading
from gateway.payloads import rfc3339


class _Series:
    """Running statistics of one metric in one window."""

    __slots__ = ("count", "counter", "delta", "last", "max", "min", "resets", "sum", "unit")

    def __init__(self, unit: str, counter: bool) -> None:
        self.unit = unit
        self.counter = counter
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.last = 0.0
        self.delta = 0.0
        self.resets = 0


class _Window:
    """One device's open window."""

    __slots__ = ("bad", "end", "series", "start", "uncertain")

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.end = end
        self.series: dict[str, _Series] = {}
        self.bad = 0
        self.uncertain = 0


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the telemetry payload says about a device besides its id."""

    driver: str
    zone: str | None
    window: float


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """A finished window, ready to be stamped and sent (`ts` = window end)."""

    body: dict[str, Any]
    ts: float


class Aggregator:
    """Per-device tumbling windows; feed it with `add`, collect with `take_closed`."""

    __slots__ = ("_closed", "_counters", "_devices", "_open", "default_window", "late")

    def __init__(self, default_window: float, devices: dict[str, DeviceInfo]) -> None:
        self.default_window = default_window
        self._devices = dict(devices)
        self._open: dict[str, _Window] = {}
        # Last counter value per (device, metric), across windows: the baseline of the next delta.
        self._counters: dict[tuple[str, str], float] = {}
        self._closed: list[ClosedWindow] = []
        self.late = 0

    def configure(self, default_window: float, devices: dict[str, DeviceInfo]) -> None:
        """Apply a reloaded config; open windows of devices whose window changed are closed."""
        self.default_window = default_window
        for device, info in devices.items():
            old = self._devices.get(device)
            if old is not None and old.window != info.window and device in self._open:
                self._close(device, partial=True)
        self._devices = dict(devices)

    def counter_baselines(self) -> dict[str, float]:
        """Counter baselines to persist across restarts, keyed `device\\x1fmetric`."""
        return {f"{d}\x1f{m}": v for (d, m), v in self._counters.items()}

    def restore_baselines(self, saved: dict[str, float]) -> None:
        """Restore baselines saved by `counter_baselines` (energy used while down is kept)."""
        for key, value in saved.items():
            device, _, metric = key.partition("\x1f")
            self._counters.setdefault((device, metric), float(value))

    def _window_for(self, device: str, ts: float) -> _Window:
        info = self._devices.get(device)
        length = info.window if info is not None else self.default_window
        start = math.floor(ts / length) * length
        window = _Window(start, start + length)
        self._open[device] = window
        return window

    def add(self, r: Reading) -> None:
        """Fold one reading into its device's open window (the hot path: keep it lean)."""
        window = self._open.get(r.device)
        if window is None:
            window = self._window_for(r.device, r.ts)
        elif r.ts >= window.end:
            self._close(r.device, partial=False)
            window = self._window_for(r.device, r.ts)
        elif r.ts < window.start:
            self.late += 1
        if r.quality is not Quality.GOOD:
            if r.quality is Quality.BAD:
                window.bad += 1
                return
            window.uncertain += 1
        value = r.value
        if value != value:  # noqa: PLR0124 - NaN test without a call on the hot path; NaN: a meter's "not available"; never poison min/max/mean
            window.bad += 1
            return
        series = window.series.get(r.metric)
        if series is None:
            series = window.series[r.metric] = _Series(r.unit, r.counter)
        series.count += 1
        series.last = value
        if series.counter:
            self._count(r, series)
            return
        series.sum += value
        series.min = min(series.min, value)
        series.max = max(series.max, value)

    def _count(self, r: Reading, series: _Series) -> None:
        key = (r.device, r.metric)
        prev = self._counters.get(key)
        self._counters[key] = r.value
        if prev is None:
            return  # first value ever seen: it is the baseline, not consumption
        if r.value >= prev:
            series.delta += r.value - prev
        elif r.wrap is not None and prev - r.value > r.wrap / 2:
            series.delta += (r.wrap - prev) + r.value  # rolled over at the device's maximum
        else:
            series.delta += r.value  # counter reset: the device started again from zero
            series.resets += 1

    def _close(self, device: str, *, partial: bool) -> None:
        window = self._open.pop(device)
        if not window.series and not window.bad and not window.uncertain:
            return
        info = self._devices.get(device)
        metrics: dict[str, Any] = {}
        for name, s in window.series.items():
            if s.counter:
                metrics[name] = {
                    "unit": s.unit,
                    "count": s.count,
                    "delta": round(s.delta, 9),
                    "last": s.last,
                    "resets": s.resets,
                }
            else:
                metrics[name] = {
                    "unit": s.unit,
                    "count": s.count,
                    "min": s.min,
                    "max": s.max,
                    "mean": round(s.sum / s.count, 6),
                    "last": s.last,
                    "sum": round(s.sum, 6),
                }
        body: dict[str, Any] = {"device": device}
        if info is not None:
            body["driver"] = info.driver
            if info.zone is not None:
                body["zone"] = info.zone
        body["window"] = {"start": rfc3339(window.start), "end": rfc3339(window.end)}
        if partial:
            body["partial"] = True
        body["metrics"] = metrics
        if window.bad or window.uncertain:
            body["quality"] = {"bad": window.bad, "uncertain": window.uncertain}
        self._closed.append(ClosedWindow(body, window.end))

    def flush_due(self, now: float) -> None:
        """Close every window whose end has passed (`now` already includes any grace)."""
        for device in [d for d, w in self._open.items() if w.end <= now]:
            self._close(device, partial=False)

    def flush_all(self) -> None:
        """Close every open window (shutdown): they are marked `partial`."""
        for device in list(self._open):
            self._close(device, partial=True)

    def next_end(self) -> float | None:
        """The earliest end among open windows."""
        return min((w.end for w in self._open.values()), default=None)

    def take_closed(self) -> list[ClosedWindow]:
        """Windows closed since the last call."""
        closed, self._closed = self._closed, []
        return closed
