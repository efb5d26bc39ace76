"""Clock sync detection, and payloads flagged until the clock is synchronised."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from gateway.clock import ClockService, ClockSync, _timesyncd, clock_sync
from gateway.payloads import Stamper

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.services import ServiceContext


def test_timesyncd_flag_file(tmp_path: Path) -> None:
    d = tmp_path / "timesync"
    assert _timesyncd(d) is ClockSync.UNKNOWN  # timesyncd not in use
    d.mkdir()
    assert _timesyncd(d) is ClockSync.UNSYNCED  # running, not yet synchronised
    (d / "synchronized").touch()
    assert _timesyncd(d) is ClockSync.SYNCED


def test_clock_sync_answers_on_this_machine(tmp_path: Path) -> None:
    state, source = clock_sync(tmp_path / "absent")
    assert isinstance(state, ClockSync)
    assert source  # says how it knows (or that nothing answered)


async def test_payloads_are_flagged_until_the_first_sync() -> None:
    answers = [ClockSync.UNSYNCED, ClockSync.UNSYNCED, ClockSync.SYNCED, ClockSync.UNSYNCED]
    stamper = Stamper("gw-1")
    ctx = cast("ServiceContext", SimpleNamespace(stamper=stamper))
    service = ClockService(ctx, probe=lambda: (answers.pop(0), "test"))
    await service.open()
    assert stamper.stamp({})["clock_synced"] is False
    assert service.check() is False
    assert stamper.clock_synced is False
    assert service.check() is True  # just became synchronised
    assert "clock_synced" not in stamper.stamp({})
    # Losing NTP later does not flag payloads again: the clock was set once (module doc).
    assert service.check() is False
    assert stamper.clock_synced is True
    assert service.stats() == {"state": "unsynced", "source": "test", "synced": True}


async def test_an_unknown_clock_is_not_flagged() -> None:
    stamper = Stamper("gw-1")
    ctx = cast("ServiceContext", SimpleNamespace(stamper=stamper))
    service = ClockService(ctx, probe=lambda: (ClockSync.UNKNOWN, "no source answered"))
    await service.open()
    assert stamper.clock_synced is True
