"""Stockout inference at run time: the shipped model, features from gateway state, rounds,
hysteresis, and the predictions/alerts payloads (validated against docs/asyncapi.yaml)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from gateway.config import ConfigError, parse_config
from gateway.estimates import EstimateSource, ShelfEstimate
from gateway.events import Sale
from gateway.model_store import ModelSource, load_model
from gateway.payloads import UlidFactory
from gateway.plugins import Registry
from gateway.stockout import FEATURE_NAMES, HISTORY_H
from gateway.stockout.alerts import CLEARED, EMPTY_NOW, FORECAST, RAISED, AlertBook
from gateway.stockout.history import SalesHistory
from gateway.stockout.messages import prediction_bodies
from gateway.stockout.runtime import RoundInput, RoundResult, build_round, slide
from tests.gateway.inference_env import NOW, ROOT_MODELS, FakeInventory, InferenceEnv, config_text

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

H = 3600.0
F = {name: i for i, name in enumerate(FEATURE_NAMES)}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[InferenceEnv]:
    e = InferenceEnv(tmp_path)
    yield e
    await e.stop()


def sale(sku: str | None, qty: str, ts: float) -> Sale:
    return Sale("till-1", "t1", sku, Decimal(qty), Decimal("1.00"), Decimal(qty), "EUR", ts, 0.0)


# -- the shipped model ---------------------------------------------------------------------


def test_shipped_model_loads_and_scores_the_cards_reference_vector() -> None:
    source = ModelSource.configured(None)
    data, card_data = source.read()
    model = load_model(data, card_data, source)
    card = json.loads(card_data)
    x = np.asarray(card["reference"]["input"], dtype=np.float32)
    expected = np.asarray(card["reference"]["probabilities"])[:, card["output"]["positive_column"]]
    assert np.allclose(model.score(x), expected, atol=card["reference"]["tolerance"])
    assert model.card.feature_names == FEATURE_NAMES
    assert model.describe()["origin"] == "shipped"


@pytest.mark.parametrize("name", ["stockout.onnx", "stockout.json"])
def test_the_wheel_carries_the_repos_model(name: str) -> None:
    packaged = Path(__file__).resolve().parents[2] / "gateway" / "data" / "models" / name
    assert packaged.read_bytes() == (ROOT_MODELS / name).read_bytes()


def test_importing_the_service_module_loads_no_numpy_or_onnxruntime() -> None:
    code = (
        "import sys, gateway.inference, gateway.config.inference;"
        "print(sorted(m for m in ('numpy', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# -- config ------------------------------------------------------------------------------


def test_config_defaults_and_errors(tmp_path: Path) -> None:
    def parse(inference: str) -> object:
        text = config_text(tmp_path, inference, "    - {sku: A1, name: Milk}\n", keys=[])
        return parse_config(text, "c.yaml", Registry(), base_dir=tmp_path)

    absent = parse_config(
        "gateway: {store: s, id: g}\n", "c.yaml", Registry(), base_dir=tmp_path
    ).inference
    assert absent is None or not absent.enabled  # no section: numpy is never imported
    assert not parse("  enabled: false\n  interval: 5m\n").inference.enabled  # type: ignore[attr-defined]
    assert parse("  interval: 5m\n").inference.enabled  # type: ignore[attr-defined]
    config = parse("  enabled: true\n")
    section = config.inference  # type: ignore[attr-defined]
    assert section.model is None  # the shipped model
    assert (section.interval, section.threshold, section.hysteresis.min_hold) == (900, None, 3600)
    with pytest.raises(ConfigError) as err:
        parse("  interval: 10s\n  threshold: 0.05\n  horizn: 4h\n")
    text = "\n".join(str(i) for i in err.value.issues)
    assert "inference.interval" in text and "minimum is 1m" in text
    assert "horizn" in text and "horizon" in text  # did you mean
    with pytest.raises(ConfigError, match="clear_margin"):
        parse("  threshold: 0.05\n")


# -- features from gateway state -----------------------------------------------------------


def _state(now: float) -> tuple[SalesHistory, RoundInput]:
    history = SalesHistory(100)
    # A1: last Monday 10:30 (2), Sunday 11:00 (5), today 07:30 (1), 09:10 (2), 09:40 (1).
    for ts, qty in [
        (NOW + H - 168 * H + 1800, 2.0),
        (NOW - 22 * H, 5.0),
        (NOW - 1.5 * H, 1.0),
        (NOW + 600, 2.0),
        (NOW + 2400, 1.0),
    ]:
        assert history.add("A1", qty, ts)
    history.row("B2")
    history.add("C3", 1.0, NOW - H)
    if now > NOW + H:
        history.add("A1", 1.0, NOW + H + 900)  # 10:15
    sales, last_sale = history.window(now)
    estimate = ShelfEstimate(
        "A1", 3.0, EstimateSource.RFID, now - 1800, last_refill=NOW - 3 * H, capacity=10
    )
    inp = RoundInput(
        now=now,
        utc_offset_s=0.0,
        horizon_h=4.0,
        skus=list(history.skus),
        sales=sales,
        last_sale=last_sale,
        first_hour=history.first_hour or 0,
        estimates={"A1": estimate},
        capacities={"A1": 10, "B2": 6},
    )
    return history, inp


def test_features_from_a_hand_made_store_state() -> None:
    now = NOW + H  # Monday 10:00 UTC, a whole hour: exactly the training layout
    _, inp = _state(now)
    skus, x, unscored = build_round(inp)
    assert skus == ["A1", "B2"]
    assert unscored == 1  # C3: no estimate and no shelf capacity
    a, b = x[0], x[1]
    expected_a = {
        "on_shelf": 3.0,
        "fill_ratio": 0.3,
        "capacity": 10.0,
        "estimate_source": 3.0,  # RFID
        "estimate_age_h": 0.5,
        "sales_1h": 3.0,
        "sales_3h": 4.0,
        "sales_24h": 9.0,
        "sales_next_h_last_week": 2.0,
        "rate_per_day": 11 / 14,
        "days_of_cover": 3 / (11 / 14),
        "hours_since_sale": 1 / 3,
        "hours_since_refill": 4.0,
        "promo": 0.0,
        "hour_of_day": 10.0,
        "day_of_week": 0.0,
    }
    for name, value in expected_a.items():
        assert a[F[name]] == pytest.approx(value, rel=1e-5, abs=1e-5), name
    # B2: no estimate: the catalog capacity as a book estimate, aged since the history began.
    assert (b[F["on_shelf"]], b[F["estimate_source"]], b[F["capacity"]]) == (6.0, 0.0, 6.0)
    assert b[F["estimate_age_h"]] == pytest.approx(168.0)
    assert b[F["days_of_cover"]] == pytest.approx(600.0)
    assert b[F["hours_since_sale"]] == pytest.approx(HISTORY_H)


def test_between_whole_hours_the_columns_slide_to_end_at_now() -> None:
    now = NOW + 1.5 * H  # 10:30; one more sale at 10:15
    _, inp = _state(now)
    _, x, _ = build_round(inp)
    # (09:30, 10:30]: the 10:15 sale + half of 09:00-10:00's 3 units (spread evenly).
    assert x[0, F["sales_1h"]] == pytest.approx(1 + 0.5 * 3)
    assert x[0, F["sales_3h"]] == pytest.approx(2.5 + 0.5 * 3 + 0.5 * 1)
    sales = np.arange(2 * (HISTORY_H + 1), dtype=np.float32).reshape(2, -1)
    assert np.array_equal(slide(sales, 0.0), sales[:, :-1])
    assert np.allclose(
        slide(sales, 1e-9), sales[:, :-1] + np.eye(1, HISTORY_H, HISTORY_H - 1) * sales[:, -1:]
    )


async def test_sales_history_survives_a_restart(env: InferenceEnv) -> None:
    service = await env.start()
    for ts, sku in [(NOW - 30 * H, "A1"), (NOW - 10, "A1"), (NOW - 5, "B2")]:
        env.pipeline._handle(sale(sku, "2", ts))
    env.pipeline._handle(sale(None, "1", NOW))  # unresolved name: not demand
    env.pipeline._handle(sale("A1", "-1", NOW))  # a refund
    assert (service.counts["sales"], service.counts["unusable_sales"]) == (3, 2)
    before = service.history.window(NOW)
    restarted = await env.start()
    after = restarted.history.window(NOW)
    assert restarted.history.skus == ["A1", "B2"]
    assert np.array_equal(before[0], after[0])
    assert np.array_equal(before[1], after[1])


# -- hysteresis ----------------------------------------------------------------------------


def test_alert_hysteresis_raises_once_holds_and_clears_below_the_lower_level() -> None:
    book = AlertBook(threshold=0.6, clear_margin=0.1, min_hold=3600.0)
    t = NOW
    no = np.array([False])

    def step(risk: float, minutes: float, empty: bool = False) -> list[tuple[str, str]]:
        flag = np.array([empty]) if empty else no
        return [
            (x.state, x.reason)
            for x in book.update(["A1"], np.array([risk], np.float32), flag, t + minutes * 60)
        ]

    assert step(0.55, 0) == []
    assert step(0.61, 15) == [(RAISED, FORECAST)]
    # Around the threshold: no flapping.
    for minute, risk in enumerate([0.59, 0.62, 0.58, 0.61, 0.55], start=2):
        assert step(risk, minute * 15) == []
    assert step(0.3, 60) == []  # below the clear level, but held only 45 min so far
    assert step(0.55, 90) == []  # held long enough, but inside the band
    assert step(0.7, 100, empty=True) == [(RAISED, EMPTY_NOW)]  # worse: said once
    assert step(0.7, 105, empty=True) == []
    assert step(0.45, 120) == [(CLEARED, EMPTY_NOW)]
    assert step(0.62, 135) == [(RAISED, FORECAST)]
    state = book.state()
    again = AlertBook(0.6, 0.1, 3600.0)
    again.restore(state)
    assert again.is_open("A1")


# -- rounds and payloads -------------------------------------------------------------------


async def test_a_round_publishes_predictions_and_alerts_that_match_the_contract(
    env: InferenceEnv,
) -> None:
    env.inventory = FakeInventory(
        {"A1": ShelfEstimate("A1", 0.0, EstimateSource.RFID, NOW - 600, capacity=10)}
    )
    inference = "  threshold: 0.02\n  hysteresis: {clear_margin: 0.01}\n"
    service = await env.start(inference)
    for hours_ago in (30, 20, 5, 3):
        env.pipeline._handle(sale("A1", "3", NOW - hours_ago * H))
    result = await service.run_round()
    assert result is not None and result.skus == ["A1", "B2"]
    (snapshot,) = env.messages.on("predictions")
    assert snapshot["full"] is True and snapshot["model"] == "stockout 1.1.0"
    assert snapshot["horizon_s"] == 4 * H and snapshot["threshold"] == 0.02
    items = {i["sku"]: i for i in snapshot["items"]}
    assert items["A1"]["on_shelf"] == 0 and items["A1"]["source"] == "rfid"
    assert items["B2"]["source"] == "book" and items["B2"]["on_shelf"] == 6
    alerts = {a["sku"]: a for a in env.messages.on("alerts")}
    a1 = alerts["A1"]
    assert (a1["state"], a1["severity"], a1["details"]["reason"]) == (
        "raised",
        "critical",
        "empty_now",
    )
    assert set(a1["details"]["features"]) == set(FEATURE_NAMES)
    assert items["A1"]["alert"] is True
    stats = service.stats()
    assert stats["state"] == "ok" and stats["last_round"]["unscored"] == 1
    assert stats["inventory"] == "inventory service"

    # Same risks a minute later: nothing new to say.
    env.clock.now += 60
    await service.run_round()
    assert len(env.messages.on("predictions")) == 1
    assert len(env.messages.on("alerts")) == len(alerts)
    # After the snapshot interval: every SKU again.
    env.clock.now += 3600
    await service.run_round()
    assert env.messages.on("predictions")[-1].get("full") is True

    # A restart remembers the open alerts: no second "raised".
    count = len(env.messages.on("alerts"))
    service = await env.start(inference)
    await service.run_round()
    assert len(env.messages.on("alerts")) == count


async def test_without_an_inventory_service_it_says_so_and_scores_from_capacities(
    env: InferenceEnv,
) -> None:
    service = await env.start()
    result = await service.run_round()
    assert result is not None and result.skus == ["A1", "B2"]
    assert "no inventory service" in service.stats()["inventory"]
    assert all(i["source"] == "book" for i in env.messages.on("predictions")[0]["items"])


async def test_the_loop_scores_on_the_clock(env: InferenceEnv) -> None:
    class Ticking:
        def __init__(self, start: float) -> None:
            self.now = start

        def __call__(self) -> float:
            self.now += 0.002
            return self.now

    service = await env.start("  interval: 1m\n")
    service._wall = Ticking(NOW - 0.01)
    task = asyncio.create_task(service.run(), name="inference-test")
    try:
        await env.messages.wait_for("predictions", 1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert service.counts["rounds"] == 1


def test_big_snapshots_travel_in_parts_under_the_size_limit() -> None:
    n = 4000
    skus = [f"SKU-{i:05d}-{'x' * 40}" for i in range(n)]
    x = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    result = RoundResult(
        skus, np.linspace(0, 1, n, dtype=np.float32), x, np.zeros(n, bool), 0, 1.0, 1.0
    )
    head = {"model": "stockout 1.1.0", "horizon_s": 14400.0, "threshold": 0.5}
    published: dict[str, tuple[float, bool]] = {}
    book = AlertBook(0.5, 0.1, 0.0)
    bodies = prediction_bodies(
        result, published, book, head=head, snapshot=True, min_change=0.05, ids=UlidFactory()
    )
    from tests.gateway.inference_env import Messages

    sink = Messages()
    for body in bodies:
        sink._take("predictions", body)  # validates and checks < 120 KB
    assert len(bodies) > 1
    assert {b["part"]["of"] for b in bodies} == {bodies[0]["part"]["of"]}
    assert [b["part"]["n"] for b in bodies] == list(range(1, len(bodies) + 1))
    assert sum(len(b["items"]) for b in bodies) == n
    # Nothing changed: the next round has nothing to publish.
    assert not prediction_bodies(
        result, published, book, head=head, snapshot=False, min_change=0.05, ids=UlidFactory()
    )
