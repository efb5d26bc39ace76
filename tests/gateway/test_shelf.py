"""Shelf-scale arithmetic: unit counts with confidence, and the stable/hysteresis filter."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.shelf import StableFilter, units_on_shelf


@pytest.mark.parametrize(
    ("weight", "tare", "unit", "count", "confidence"),
    [
        (3.5, 0.5, 0.5, 6, 1.0),  # exactly six units
        (3.55, 0.5, 0.5, 6, 0.8),  # a tenth of a unit over: less sure
        (3.625, 0.5, 0.5, 6, 0.5),
        (0.5, 0.5, 0.5, 0, 1.0),  # empty shelf
        (0.45, 0.5, 0.5, 0, 0.8),  # slightly below the tare
        (0.0, 0.5, 0.5, 0, 0.0),  # a whole unit below the tare: tare is wrong
    ],
)
def test_units_on_shelf(
    weight: float, tare: float, unit: float, count: int, confidence: float
) -> None:
    got_count, got_confidence = units_on_shelf(weight, tare, unit)
    assert got_count == count
    assert got_confidence == pytest.approx(confidence)


def test_half_way_has_no_confidence() -> None:
    assert units_on_shelf(1.25, 0.0, 0.5)[1] == pytest.approx(0.0)


def test_bad_unit_weight_is_a_config_error() -> None:
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="unit weight"):
            units_on_shelf(1.0, 0.0, bad)


def test_non_finite_weight_counts_nothing() -> None:
    assert units_on_shelf(math.nan, 0.0, 0.5) == (0, 0.0)
    assert units_on_shelf(math.inf, 0.0, 0.5) == (0, 0.0)


@given(
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(min_value=0, max_value=1e3),
    st.floats(min_value=1e-4, max_value=1e3),
)
def test_count_and_confidence_stay_in_range(weight: float, tare: float, unit: float) -> None:
    count, confidence = units_on_shelf(weight, tare, unit)
    assert count >= 0
    assert 0.0 <= confidence <= 1.0


def test_filter_takes_first_stable_reading_and_ignores_dynamic() -> None:
    f = StableFilter(hold=3, band=2)
    assert f.update(7, stable=False) is None
    assert f.update(5, stable=True) == 5
    assert f.update(9, stable=False) == 5
    assert f.count == 5


def test_small_change_must_hold() -> None:
    f = StableFilter(hold=3, band=2)
    f.update(10, stable=True)
    assert f.update(9, stable=True) == 10
    assert f.update(9, stable=True) == 10
    assert f.update(9, stable=True) == 9


def test_flicker_does_not_change_the_count() -> None:
    f = StableFilter(hold=3, band=2)
    f.update(10, stable=True)
    for _ in range(5):
        assert f.update(11, stable=True) == 10
        assert f.update(10, stable=True) == 10


def test_large_change_is_taken_at_once() -> None:
    f = StableFilter(hold=3, band=2)
    f.update(10, stable=True)
    assert f.update(6, stable=True) == 6


def test_scale_bouncing_between_stable_and_dynamic() -> None:
    f = StableFilter(hold=2, band=2)
    f.update(10, stable=True)
    # Dynamic readings in between neither count towards nor break a run.
    readings = [(9, True), (14, False), (9, False), (9, True)]
    assert [f.update(c, stable=s) for c, s in readings] == [10, 10, 10, 9]


def test_low_confidence_readings_are_ignored() -> None:
    f = StableFilter(hold=1, band=0, min_confidence=0.6)
    f.update(4, stable=True, confidence=0.9)
    assert f.update(5, stable=True, confidence=0.3) == 4
    assert f.update(5, stable=True, confidence=0.7) == 5


def test_filter_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="hold"):
        StableFilter(hold=0)
    with pytest.raises(ValueError, match="band"):
        StableFilter(band=-1)
