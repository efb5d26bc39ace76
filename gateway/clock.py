"""Is the system clock synchronised? And the service that flags payloads while it is not.

A Raspberry Pi has no real-time clock: after a power cut it boots with the time saved at
the last shutdown (fake-hwclock) until NTP corrects it, and everything stamped before
then carries `"clock_synced": false` (contract.md "Uplink payloads").

How we know, cheapest first (one syscall or one stat: fine to poll every few seconds):

1. `adjtimex(2)` with `modes = 0` (read-only): the kernel's `STA_UNSYNC` status bit, which
   every NTP client (systemd-timesyncd, chrony, ntpd) clears once it disciplines the clock.
2. Under the unit's `ProtectClock=yes` that syscall is filtered (EPERM), so we fall back to
   `/run/systemd/timesync/synchronized`, which systemd-timesyncd creates at its first sync
   (systemd-timesyncd.service(8)). Its directory without the file means "not yet".
3. Neither answers (another NTP client under the sandbox): unknown, treated as synced —
   flagging every payload forever would be worse than flagging none.

Once seen synchronised, the service stays so for the life of the process: the kernel sets
`STA_UNSYNC` again after hours without NTP (an internet outage), but the clock, once set,
keeps good time; the problem this solves is a clock that was never set since boot.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import enum
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.services import Service, ServiceContext

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

POLL_INTERVAL = 5.0
TIMESYNC_DIR = Path("/run/systemd/timesync")

_STA_UNSYNC = 0x0040  # <linux/timex.h>
_TIME_ERROR = 5  # adjtimex's return value "clock not synchronised" (adjtimex(2))


class ClockSync(enum.StrEnum):
    """What we know about the system clock."""

    SYNCED = "synced"
    UNSYNCED = "unsynced"
    UNKNOWN = "unknown"


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; only `modes` and `status` are read. The trailing
    # padding (11 ints in the kernel header) is generous so the kernel never writes past us.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_byte * 256),
    ]


def _adjtimex() -> ClockSync:
    """The kernel's view through adjtimex(2); UNKNOWN when the call is refused."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        call = libc.adjtimex
    except (OSError, AttributeError):
        return ClockSync.UNKNOWN
    timex = _Timex()
    state = call(ctypes.byref(timex))
    if state < 0:
        return ClockSync.UNKNOWN  # EPERM under a seccomp filter (ProtectClock=yes)
    if state == _TIME_ERROR or timex.status & _STA_UNSYNC:
        return ClockSync.UNSYNCED
    return ClockSync.SYNCED


def _timesyncd(directory: Path = TIMESYNC_DIR) -> ClockSync:
    """systemd-timesyncd's flag file."""
    try:
        if (directory / "synchronized").exists():
            return ClockSync.SYNCED
        if directory.is_dir():
            return ClockSync.UNSYNCED
    except OSError:
        pass
    return ClockSync.UNKNOWN


def clock_sync(timesync_dir: Path = TIMESYNC_DIR) -> tuple[ClockSync, str]:
    """(state, how we know): adjtimex first, then systemd-timesyncd's flag file."""
    state = _adjtimex()
    if state is not ClockSync.UNKNOWN:
        return state, "adjtimex"
    state = _timesyncd(timesync_dir)
    if state is not ClockSync.UNKNOWN:
        return state, f"{timesync_dir}/synchronized"
    return ClockSync.UNKNOWN, "no source answered"


class ClockService(Service):
    """Keeps `ctx.stamper.clock_synced` true only once the system clock is synchronised."""

    name = "clock"

    def __init__(
        self,
        ctx: ServiceContext,
        probe: Callable[[], tuple[ClockSync, str]] = clock_sync,
        interval: float = POLL_INTERVAL,
    ) -> None:
        super().__init__(ctx)
        self._probe = probe
        self.interval = interval
        self.state = ClockSync.UNKNOWN
        self.source = ""
        self.synced_once = False

    async def open(self) -> None:
        """Probe before the devices start, so the first payloads are stamped right."""
        self.check()
        if self.state is ClockSync.UNSYNCED:
            log.warning(
                "The system clock is not synchronised yet (%s); payloads carry "
                '"clock_synced": false until it is',
                self.source,
            )

    async def run(self) -> None:
        """Poll until synchronised once, then idle."""
        while not self.synced_once:
            await asyncio.sleep(self.interval)
            if self.check():
                log.info("The system clock is synchronised (%s)", self.source)
        await asyncio.Event().wait()

    def check(self) -> bool:
        """Probe once and update the stamper; True when the clock just became synced."""
        self.state, self.source = self._probe()
        was = self.synced_once
        if self.state is not ClockSync.UNSYNCED:
            self.synced_once = True
        self.ctx.stamper.clock_synced = self.synced_once
        return self.synced_once and not was and self.state is ClockSync.SYNCED

    def stats(self) -> dict[str, Any]:
        """The last probe's answer."""
        return {"state": str(self.state), "source": self.source, "synced": self.synced_once}


def build(ctx: ServiceContext) -> Service | None:
    """Always on: a clock that was never set is possible on any gateway without an RTC."""
    return ClockService(ctx)
