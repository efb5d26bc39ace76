"""The aggregator: wall-clock windows, statistics, counter deltas across reset and wrap."""

from __future__ import annotations

import math

import pytest

from gateway.aggregate import Aggregator, DeviceInfo
from gateway.events import Quality, Reading

T0 = 1_700_000_040.0  # a minute boundary (divisible by 60)


def reading(metric: str, value: float, ts: float, **kw: object) -> Reading:
    return Reading("m1", metric, value, kw.pop("unit", "kWh"), ts, ts, **kw)  # type: ignore[arg-type]


def make(window: float = 60.0) -> Aggregator:
    return Aggregator(window, {"m1": DeviceInfo("sim_meter", "main", window)})


def test_gauge_statistics_and_alignment() -> None:
    agg = make()
    for i, v in enumerate([230.0, 232.0, 228.0]):
        agg.add(reading("voltage", v, T0 + 5 + i, unit="V"))
    agg.add(reading("voltage", 231.0, T0 + 61, unit="V"))  # next window closes the first
    (closed,) = agg.take_closed()
    body = closed.body
    assert body["device"] == "m1"
    assert body["driver"] == "sim_meter"
    assert body["zone"] == "main"
    assert body["window"] == {
        "start": "2023-11-14T22:14:00.000Z",
        "end": "2023-11-14T22:15:00.000Z",
    }
    v = body["metrics"]["voltage"]
    assert v == {
        "unit": "V",
        "count": 3,
        "min": 228.0,
        "max": 232.0,
        "mean": 230.0,
        "last": 228.0,
        "sum": 690.0,
    }
    assert closed.ts == T0 + 60


def test_counter_delta_over_windows() -> None:
    agg = make()
    agg.add(reading("energy", 100.0, T0 + 1, counter=True))
    agg.add(reading("energy", 100.5, T0 + 30, counter=True))
    agg.add(reading("energy", 101.0, T0 + 61, counter=True))
    agg.add(reading("energy", 101.25, T0 + 90, counter=True))
    agg.flush_all()
    first, second = agg.take_closed()
    assert first.body["metrics"]["energy"]["delta"] == pytest.approx(0.5)
    # The second window's delta includes the step from the first window's last value.
    assert second.body["metrics"]["energy"]["delta"] == pytest.approx(0.75)
    assert second.body["partial"] is True


def test_counter_reset_counts_consumption_after_reset() -> None:
    agg = make()
    for ts, v in [(1, 500.0), (10, 501.0), (20, 0.5), (30, 1.5)]:
        agg.add(reading("energy", v, T0 + ts, counter=True))
    agg.flush_all()
    (w,) = agg.take_closed()
    e = w.body["metrics"]["energy"]
    assert e["delta"] == pytest.approx(1.0 + 0.5 + 1.0)
    assert e["resets"] == 1


def test_counter_wrap() -> None:
    agg = make()
    for ts, v in [(1, 99_990.0), (10, 99_999.0), (20, 4.0)]:
        agg.add(reading("energy", v, T0 + ts, counter=True, wrap=100_000.0))
    agg.flush_all()
    (w,) = agg.take_closed()
    assert w.body["metrics"]["energy"]["delta"] == pytest.approx(9.0 + 1.0 + 4.0)
    assert w.body["metrics"]["energy"]["resets"] == 0


def test_counter_baseline_survives_restart() -> None:
    agg = make()
    agg.add(reading("energy", 10.0, T0 + 1, counter=True))
    saved = agg.counter_baselines()
    fresh = make()
    fresh.restore_baselines(saved)
    fresh.add(reading("energy", 12.0, T0 + 3600, counter=True))
    fresh.flush_all()
    (w,) = fresh.take_closed()
    assert w.body["metrics"]["energy"]["delta"] == pytest.approx(2.0)


def test_quality_and_nan_do_not_poison_stats() -> None:
    agg = make()
    agg.add(reading("power", 1.0, T0 + 1, unit="kW"))
    agg.add(reading("power", math.nan, T0 + 2, unit="kW"))
    agg.add(reading("power", 99.0, T0 + 3, unit="kW", quality=Quality.BAD))
    agg.add(reading("power", 3.0, T0 + 4, unit="kW", quality=Quality.UNCERTAIN))
    agg.flush_all()
    (w,) = agg.take_closed()
    assert w.body["metrics"]["power"]["max"] == 3.0
    assert w.body["quality"] == {"bad": 2, "uncertain": 1}


def test_late_reading_is_folded_into_open_window() -> None:
    agg = make()
    agg.add(reading("power", 1.0, T0 + 61, unit="kW"))
    agg.add(reading("power", 2.0, T0 + 59, unit="kW"))  # belongs to a closed window
    assert agg.late == 1
    agg.flush_all()
    (w,) = agg.take_closed()
    assert w.body["metrics"]["power"]["count"] == 2


def test_timer_flush_and_per_device_window() -> None:
    agg = Aggregator(60.0, {"m1": DeviceInfo("sim_meter", None, 900.0)})
    agg.add(reading("power", 1.0, T0 + 1, unit="kW"))
    window_start = math.floor((T0 + 1) / 900) * 900
    assert agg.next_end() == window_start + 900
    agg.flush_due(window_start + 899)
    assert agg.take_closed() == []
    agg.flush_due(window_start + 900)
    (w,) = agg.take_closed()
    assert "zone" not in w.body
    assert "partial" not in w.body
