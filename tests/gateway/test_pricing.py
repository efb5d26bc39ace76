"""The pricing service end to end through the router, the supervisor and the OEPL simulator.

Batches with good and bad items, the access point going offline mid-batch, a restart with
pending jobs, duplicate commands, stale versions, schedules and their end (`valid_to`).
The run over real mosquitto is in test_pricing_mqtt.py.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from drivers.openepaperlink.simulator import ApSimulator
from tests.contract_schema import validate
from tests.labels_env import LabelsEnv, env_config, eventually, prices_result_errors, wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

MACS = [f"00000000000000{n:02X}" for n in range(1, 21)]
CATALOG = f"""\
catalog:
  currency: EUR
  skus:
    - {{sku: "1001", name: Milk 1L, labels: [{MACS[0]}, {MACS[1]}]}}
    - {{sku: "1002", name: Bread, labels: [{MACS[2]}]}}
    - {{sku: "1003", name: Cheese, labels: [{MACS[3]}]}}
    - {{sku: "2000", name: Bulk, labels: [{", ".join(MACS[4:20])}]}}
    - {{sku: "9999", name: Unlabelled}}
"""


def rfc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def item(sku: str = "1001", price: object = "0.89", version: int = 1, **kw: Any) -> dict[str, Any]:
    return {"sku": sku, "price": price, "currency": "EUR", "version": version, **kw}


@pytest.fixture
async def sim() -> AsyncIterator[ApSimulator]:
    ap = ApSimulator(MACS, confirm_delay=0.05)
    await ap.start()
    yield ap
    await ap.stop()


@pytest.fixture
async def env(tmp_path: Path, sim: ApSimulator) -> AsyncIterator[LabelsEnv]:
    devices = f"devices:\n  - {{id: ap-1, driver: openepaperlink, url: '{sim.url}', refresh: 1s, reconnect: 200ms}}\n"
    async with LabelsEnv(tmp_path, env_config(tmp_path, CATALOG, devices)) as e:
        yield e


def uploads_of(sim: ApSimulator, mac: str) -> list[Any]:
    return [u for u in sim.uploads if u.mac == mac]


def texts(upload: Any) -> list[str]:
    return [e["text"][2] for e in upload.script if "text" in e]


async def test_good_items_go_through_and_bad_ones_are_rejected_each_with_a_reason(
    env: LabelsEnv, sim: ApSimulator
) -> None:
    items = [
        item("1001", "0.89", promo_price="0.79", unit_price="0.89", unit_basis="l"),
        item("4711"),  # not in the catalog
        item("1002", 1.5),  # a JSON number, not a decimal string
        item("1003", currency="EUO"),
        item("1003", unit_price="1.00", unit_basis="dozen"),
        item("1003", valid_from="tomorrow"),
        item("9999"),  # no labels
        {"sku": "1002", "price": "1.10", "currency": "EUR"},  # no version
        item("1002", "1.10", extra=1),
    ]
    await env.send("batch-1", items)
    assert (await env.ack("batch-1", "accepted"))["cmd_id"] == "batch-1"
    ack = await env.ack("batch-1")
    validate(
        "cmd/prices/ack",
        {"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "ts": "2026-01-01T00:00:00.000Z", "gw": "g", **ack},
    )
    assert prices_result_errors(ack["result"]) == []
    results = ack["result"]["items"]
    assert [r["outcome"] for r in results] == ["applied"] + ["rejected"] * 8
    assert results[0]["labels"] == 2 and "failed" not in results[0]
    assert results[0]["uploaded_at"] <= results[0]["confirmed_at"]
    reasons = [r["reason"] for r in results[1:]]
    assert reasons == [
        "unknown_sku",
        "invalid_value",
        "invalid_value",
        "invalid_value",
        "invalid_value",
        "no_labels",
        "missing_field",
        "invalid_value",
    ]
    assert all(r["detail"] for r in results[1:])
    assert ack["result"]["totals"] == {"applied": 1, "rejected": 8}
    (upload,) = uploads_of(sim, MACS[0])
    assert texts(upload) == ["Milk 1L", "0,89 €", "0,79 €", "0,89 € / l"]
    assert len(uploads_of(sim, MACS[1])) == 1


async def test_a_batch_with_nothing_valid_is_rejected_as_a_whole(env: LabelsEnv) -> None:
    await env.send("bad-1", [item("4711"), item("1001", "-1")])
    ack = await env.ack("bad-1", "rejected")
    assert ack["reason"] == "invalid_value" and "unknown_sku" in ack["detail"]


async def test_access_point_offline_mid_batch_all_confirmed_and_none_sent_after_confirmation(
    env: LabelsEnv, sim: ApSimulator
) -> None:
    sim.confirm_delay = 0.2
    await env.send("bulk-1", [item("2000", "3.00")])
    await wait_until(lambda: len(sim.uploads) >= 4, sim.changed)
    await sim.go_offline()
    offline_at = time.time()
    await env.ack("bulk-1", "accepted")
    assert env.service is not None
    uploader = env.service.uploader
    # While the AP is away, uploads fail and are retried (the AP's own event never comes).
    await eventually(lambda: uploader.counts["retries"] >= 3)
    await sim.go_online()
    ack = await env.ack("bulk-1", timeout=30)
    (result,) = ack["result"]["items"]
    assert result["outcome"] == "applied" and result["labels"] == 16, result
    for mac in MACS[4:20]:
        confirmed = [t for m, t in sim.transfers if m == mac]
        assert confirmed, f"{mac} never confirmed"
        assert not [u for u in uploads_of(sim, mac) if u.at > confirmed[0]], mac
    assert offline_at > 0


async def test_restart_with_pending_jobs_resumes_them_and_sends_the_final_ack(
    tmp_path: Path, env: LabelsEnv, sim: ApSimulator
) -> None:
    sim.busy = True  # 409 "come back later": nothing is accepted before the restart
    await env.send("r-1", [item("1001", "1.19"), item("1002", "2.49")])
    await env.ack("r-1", "accepted")
    assert env.service is not None
    service = env.service
    await eventually(lambda: service.uploader.counts["retries"] >= 2)
    await env.restart()
    sim.busy = False
    # Sent through the router, which remembers it like the ack of any finished command.
    resumed = await env.ack("r-1")
    assert prices_result_errors(resumed["result"]) == []
    assert resumed["cmd_id"] == "r-1" and resumed["result"]["resumed"] is True
    assert [r["outcome"] for r in resumed["result"]["items"]] == ["applied", "applied"]
    # The cloud sends the command again: the same ack, marked duplicate, no new work.
    env.acks.clear()
    await env.send("r-1", [item("1001", "1.19"), item("1002", "2.49")])
    again = await env.ack("r-1")
    assert again["duplicate"] is True
    assert again["result"] == resumed["result"]
    for mac in MACS[:3]:
        assert len(uploads_of(sim, mac)) == 1, mac


async def test_duplicate_command_does_the_work_once(env: LabelsEnv, sim: ApSimulator) -> None:
    await env.send("d-1", [item("1002", "2.00")])
    first = await env.ack("d-1")
    env.acks.clear()
    await env.send("d-1", [item("1002", "2.00")])
    second = await env.ack("d-1")
    assert second["duplicate"] is True and second["result"] == first["result"]
    assert len(uploads_of(sim, MACS[2])) == 1


async def test_an_older_version_never_overwrites_a_newer_one(
    env: LabelsEnv, sim: ApSimulator
) -> None:
    await env.send("v-5", [item("1003", "5.00", version=5)])
    await env.ack("v-5")
    await env.send("v-4", [item("1003", "4.00", version=4), item("1002", "1.00", version=1)])
    ack = await env.ack("v-4")
    stale, fine = ack["result"]["items"]
    assert stale["outcome"] == "rejected" and stale["reason"] == "stale_version"
    assert fine["outcome"] == "applied"
    await env.send("v-5b", [item("1003", "5.50", version=5)])
    assert (await env.ack("v-5b", "rejected"))["detail"]
    assert [texts(u)[1] for u in uploads_of(sim, MACS[3])] == ["5,00 €"]


async def test_scheduled_item_older_than_an_applied_one_is_superseded(
    env: LabelsEnv, sim: ApSimulator
) -> None:
    start = time.time() + 1.0
    await env.send("s-1", [item("1003", "3.00", version=2, valid_from=rfc(start))])
    ack = await env.ack("s-1")
    assert ack["result"]["items"][0]["outcome"] == "scheduled"
    assert ack["result"]["items"][0]["at"] == rfc(start)[:23] + "Z"
    await env.send("s-2", [item("1003", "3.50", version=3)])
    await env.ack("s-2")
    assert env.service is not None
    service = env.service
    await eventually(lambda: service.store.summary()["scheduled_items"] == 0, 5)
    assert [texts(u)[1] for u in uploads_of(sim, MACS[3])] == ["3,50 €"]


async def test_promotion_starts_on_time_and_valid_to_reverts_to_the_regular_price(
    env: LabelsEnv, sim: ApSimulator
) -> None:
    await env.send("reg-1", [item("1002", "2.00", version=1)])
    await env.ack("reg-1")
    start, end = time.time() + 1.0, time.time() + 2.0
    promo = item(
        "1002", "2.00", version=2, promo_price="1.50", valid_from=rfc(start), valid_to=rfc(end)
    )
    await env.send("promo-1", [promo])
    ack = await env.ack("promo-1")
    assert prices_result_errors(ack["result"]) == []
    (result,) = ack["result"]["items"]
    assert result["outcome"] == "scheduled" and "until" in result
    await wait_until(lambda: len(uploads_of(sim, MACS[2])) >= 3, sim.changed, 10)
    regular, promoted, reverted = uploads_of(sim, MACS[2])
    assert texts(promoted) == ["Bread", "2,00 €", "1,50 €"]
    assert start <= promoted.at < start + 0.5
    assert texts(reverted) == ["Bread", "2,00 €"]
    assert end <= reverted.at < end + 0.5
    assert texts(regular) == texts(reverted)


async def test_label_state_summary_is_in_stats(env: LabelsEnv) -> None:
    await env.send("st-1", [item("1001", "1.00")])
    await env.ack("st-1")
    assert env.service is not None
    stats = env.service.stats()
    assert stats["jobs"]["confirmed"] == 2 and stats["active"]["pending"] == 0
    assert stats["commands"] == 1
