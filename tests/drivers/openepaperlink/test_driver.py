"""The OpenEPaperLink driver against its simulator on 127.0.0.1, and its IO-free protocol layer.

Golden values come from protocols.md §5.1 (the firmware's MAC form, WebSocket strings with
their CR LF, the drawing-script element layout), not from the simulator.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Self

import pytest

from drivers.openepaperlink import OpenEPaperLink
from drivers.openepaperlink.protocol import (
    TagRecord,
    TransferDone,
    TransferTimeout,
    drawing_script,
    normalise_mac,
    parse_message,
)
from drivers.openepaperlink.simulator import ApSimulator
from gateway.actuator import LabelContent, LabelJob, LabelState, LabelStatus, LabelWriteError
from gateway.driver import Clock, DeviceState, DriverContext
from gateway.health import Health
from gateway.logs import DeviceLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

MAC = "0000021A0B3C4D5E"
CONTENT = LabelContent(
    sku="1",
    name="Milk 1L",
    price="0.89",
    currency="EUR",
    version=1,
    texts={"title": "Milk 1L", "price": "0,89 €"},
)


def test_mac_forms_follow_the_firmware() -> None:
    assert normalise_mac("0000021a0b3c4d5e") == MAC
    assert normalise_mac("02:1A:0B:3C:4D:5E") == MAC  # 12 digits: two zero bytes on top
    with pytest.raises(ValueError, match="not a tag MAC"):
        normalise_mac("021A0B3C4D5")


def test_websocket_messages_as_the_firmware_writes_them() -> None:
    done = parse_message({"logMsg": "0000021A0B3C4D5E reports xfer complete\r\n"})
    assert done == [TransferDone(MAC)]
    timeout = parse_message({"errMsg": "< 0000021A0B3C4D5E xfer timeout"})
    assert timeout == [TransferTimeout(MAC)]
    record = {
        "mac": MAC,
        "pending": 0,
        "updatecount": 3,
        "updatelast": 1700000000,
        "lastseen": 1700000001,
        "nextcheckin": 3216153600,
        "hwType": 1,
        "RSSI": -60,
    }
    assert parse_message({"tags": [record, {"mac": "junk"}, "x"]}) == [
        TagRecord(MAC, 0, 3, 1700000000, 1700000001, 3216153600)
    ]
    assert parse_message({"sys": {"heap": 1}}) == [] and parse_message([1]) == []


def test_drawing_script_is_an_array_of_single_key_elements() -> None:
    layout = {
        "title": {"x": 5, "y": 10, "font": "fonts/bahnschrift30", "color": 1, "align": 0},
        "price": {"x": 290, "y": 60, "font": "fonts/bahnschrift70", "color": 2, "align": 2},
        "promo": {"x": 5, "y": 60, "font": "fonts/bahnschrift30", "color": 2, "align": 0},
    }
    script = drawing_script({"title": "Milk 1L", "price": "0.89"}, layout, 296, 128)
    # protocols.md §5.1's example: box, then text [x, y, text, font, color, align].
    assert script == [
        {"box": [0, 0, 296, 128, "white"]},
        {"text": [5, 10, "Milk 1L", "fonts/bahnschrift30", 1, 0]},
        {"text": [290, 60, "0.89", "fonts/bahnschrift70", 2, 2]},
    ]


@pytest.fixture
async def sim() -> AsyncIterator[ApSimulator]:
    ap = ApSimulator([MAC, "0000000000000001"], confirm_delay=0.05)
    await ap.start()
    yield ap
    await ap.stop()


class Running:
    """The driver's run() as a task with a real context; statuses collected."""

    def __init__(self, url: str, **kw: object) -> None:
        cfg = OpenEPaperLink.Config.model_validate(
            {"id": "ap-1", "url": url, "reconnect": "200ms", "request_timeout": "1s", **kw}
        )
        self.driver = OpenEPaperLink(cfg)
        log = DeviceLog(
            logging.getLogger("drivers.openepaperlink"),
            {"device": "ap-1", "driver": "openepaperlink"},
        )
        self.health = Health(log)
        self.ctx = DriverContext(
            "ap-1", log, Clock(), self.health, DeviceState(), asyncio.Queue(10)
        )
        self.statuses: list[LabelStatus] = []
        self.changed = asyncio.Event()
        self.driver.watch(self._seen)

    def _seen(self, status: LabelStatus) -> None:
        self.statuses.append(status)
        self.changed.set()

    async def until(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                self.changed.clear()
                await self.changed.wait()

    async def __aenter__(self) -> Self:
        self.task = asyncio.create_task(self.driver.run(self.ctx), name="driver:ap-1")
        async with asyncio.timeout(5):
            while self.health.state.value != "ok":
                await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_upload_is_accepted_then_confirmed_at_the_tags_check_in(sim: ApSimulator) -> None:
    async with Running(sim.url) as run:
        assert sim.clock_set, "the AP clock is set at connect"
        result = await run.driver.write(LabelJob(1, MAC, CONTENT))
        (upload,) = sim.uploads
        assert upload.mac == MAC and upload.script[1]["text"][2] == "Milk 1L"
        await run.until(
            lambda: any(s.label == MAC and s.at >= int(result.accepted_at) for s in run.statuses)
        )
        assert all(s.state is LabelState.DISPLAYED for s in run.statuses)


async def test_transfer_timeout_is_reported_as_failed(sim: ApSimulator) -> None:
    sim.fail_tags.add(MAC)
    async with Running(sim.url) as run:
        await run.driver.write(LabelJob(1, MAC, CONTENT))
        await run.until(lambda: any(s.state is LabelState.FAILED for s in run.statuses))
        failed = next(s for s in run.statuses if s.state is LabelState.FAILED)
        assert failed.label == MAC and "xfer timeout" in (failed.reason or "")


async def test_refusals_say_whether_a_retry_may_help(sim: ApSimulator) -> None:
    async with Running(sim.url) as run:
        with pytest.raises(LabelWriteError, match="does not know tag") as unknown:
            await run.driver.write(LabelJob(1, "00000000000000FF", CONTENT))
        assert unknown.value.retry is False
        with pytest.raises(LabelWriteError, match="not a tag MAC") as bad:
            await run.driver.write(LabelJob(1, "shelf-12", CONTENT))
        assert bad.value.retry is False
        sim.busy = True
        with pytest.raises(LabelWriteError, match="409") as busy:
            await run.driver.write(LabelJob(1, MAC, CONTENT))
        assert busy.value.retry is True
        sim.busy, sim.hang = False, True
        with pytest.raises(LabelWriteError, match="no answer within 1s") as hung:
            await run.driver.write(LabelJob(1, MAC, CONTENT))
        assert hung.value.retry is True


async def test_offline_access_point_degrades_the_device_and_it_recovers(sim: ApSimulator) -> None:
    async with Running(sim.url) as run:
        await sim.go_offline()
        with pytest.raises(LabelWriteError, match="unreachable") as away:
            await run.driver.write(LabelJob(1, MAC, CONTENT))
        assert away.value.retry is True
        async with asyncio.timeout(5):
            while run.health.state.value != "degraded":
                await asyncio.sleep(0.01)
        await sim.go_online()
        async with asyncio.timeout(5):
            while run.health.state.value != "ok":
                await asyncio.sleep(0.01)
        await run.driver.write(LabelJob(2, MAC, CONTENT))
        assert len(sim.uploads) == 1


async def test_get_db_pages_are_all_read() -> None:
    macs = [f"{n:016X}" for n in range(1, 121)]
    ap = ApSimulator(macs)
    for tag in ap.tags.values():
        tag.updatelast = 1_700_000_000
    await ap.start()
    try:
        async with Running(ap.url) as run:
            await run.until(lambda: len({s.label for s in run.statuses}) == 120)
    finally:
        await ap.stop()
