"""The Pricer Plaza driver: IO-free item/status handling, and the pricing path against its
simulator on 127.0.0.1 — the second integration style behind the same `LabelWriter`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from drivers.pricer.protocol import item_body, last_ok_update, request_failed
from drivers.pricer.simulator import ACCESS_KEY, PricerSimulator
from gateway.actuator import LabelContent
from tests.labels_env import LabelsEnv, env_config, prices_result_errors

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

BARCODES = ["A4631053950916186", "A4631053950916187", "A4631053950916188"]
CATALOG = f"""\
catalog:
  skus:
    - {{sku: "7001", name: Coffee 500 g, labels: [{", ".join(BARCODES)}]}}
    - {{sku: "7002", name: Tea, labels: [B0000000000000001]}}
"""


def test_item_body_carries_price_texts_and_promotion() -> None:
    content = LabelContent(
        sku="7001",
        name="Coffee",
        price="7.99",
        currency="EUR",
        version=3,
        promo_price="6.49",
        unit_price="15.98",
        unit_basis="kg",
        texts={"title": "Coffee", "price": "7,99 €"},
    )
    assert item_body(content) == {
        "itemId": "7001",
        "itemName": "Coffee",
        "price": "7.99",
        "properties": {
            "text_price": "7,99 €",
            "text_title": "Coffee",
            "currency": "EUR",
            "promo_price": "6.49",
            "unit_price": "15.98",
            "unit_basis": "kg",
        },
    }


def test_label_and_request_status() -> None:
    assert last_ok_update({"lastOkUpdate": "2026-03-01T08:00:00Z"}) == 1772352000.0
    assert last_ok_update({"lastOkUpdate": None}) is None
    assert last_ok_update("x") is None
    assert request_failed({"status": "FAILED", "message": "unknown item"}) == "unknown item"
    assert request_failed({"status": "COMPLETED"}) is None
    assert request_failed({"status": "PENDING"}) is None


@pytest.fixture
async def sim() -> AsyncIterator[PricerSimulator]:
    links = dict.fromkeys(BARCODES, "7001") | {"B0000000000000001": "7002"}
    server = PricerSimulator(links, confirm_delay=0.05)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def env(tmp_path: Path, sim: PricerSimulator) -> AsyncIterator[LabelsEnv]:
    devices = (
        "devices:\n  - {id: store, driver: pricer, "
        f"url: '{sim.url}', token_url: '{sim.url}/oauth/token', access_key: {ACCESS_KEY}, "
        "client_id: storegw, poll: 1s}\n"
    )
    labels = (
        "labels: {pause: 0s, confirm_timeout: 5s, retry: {initial: 100ms, max: 200ms, attempts: 2}}"
    )
    async with LabelsEnv(tmp_path, env_config(tmp_path, CATALOG, devices, labels)) as e:
        yield e


async def test_one_item_update_serves_every_linked_label_and_they_confirm(
    env: LabelsEnv, sim: PricerSimulator
) -> None:
    await env.send("p-1", [{"sku": "7001", "price": "7.99", "currency": "EUR", "version": 1}])
    ack = await env.ack("p-1")
    assert prices_result_errors(ack["result"]) == []
    (result,) = ack["result"]["items"]
    assert result["outcome"] == "applied" and result["labels"] == 3
    assert [u["itemId"] for u in sim.item_updates] == ["7001"]  # one request, three labels


async def test_an_expired_token_is_renewed(env: LabelsEnv, sim: PricerSimulator) -> None:
    await env.send("t-1", [{"sku": "7002", "price": "2.00", "currency": "EUR", "version": 1}])
    await env.ack("t-1")
    sim.expire_tokens()
    await env.send("t-2", [{"sku": "7002", "price": "2.10", "currency": "EUR", "version": 2}])
    ack = await env.ack("t-2")
    assert ack["result"]["items"][0]["outcome"] == "applied"
    assert sim.token_requests == 2


async def test_a_failed_item_request_fails_its_labels_after_the_retries(
    env: LabelsEnv, sim: PricerSimulator
) -> None:
    sim.fail_items.add("7002")
    await env.send("f-1", [{"sku": "7002", "price": "2.00", "currency": "EUR", "version": 1}])
    ack = await env.ack("f-1")
    (result,) = ack["result"]["items"]
    assert result["outcome"] == "failed" and result["labels"] == 0
    assert result["failed"] == [{"label": "B0000000000000001", "reason": "FAILED"}]
    # The retry pushed the item again rather than waiting on the failed request.
    assert [u["itemId"] for u in sim.item_updates] == ["7002", "7002"]
