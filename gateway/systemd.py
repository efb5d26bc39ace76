"""Talking to systemd: READY, WATCHDOG, STATUS and STOPPING over `$NOTIFY_SOCKET`.

The sd_notify protocol (sd_notify(3)) is one datagram of `KEY=VALUE` lines sent to the
AF_UNIX socket named by `$NOTIFY_SOCKET` (`@name` means the abstract namespace). It is
spoken here directly, without libsystemd or a Python dependency.

- `READY=1` once `ctx.ready` is set: config loaded, outbox open, devices started.
- `WATCHDOG=1` every `$WATCHDOG_USEC / 2` (sd_watchdog_enabled(3) recommends half), sent
  from the event loop itself and only while `ctx.core_alive()`: a blocked loop or a dead
  core task sends nothing, so systemd restarts a hung daemon. The broker's state plays no
  part (contract.md "Daemon behaviour": an internet outage must never restart us).
- `STATUS=` a line `systemctl status` shows: uplink state, devices ok/failed, outbox depth.
- `STOPPING=1` at close.

`RELOADING=1` is not sent: `reconfigure()` runs after a reload has been applied, and with
`ExecReload=kill -HUP` systemd's reload is over when `kill` returns, so announcing it then
would only make systemd wait for a READY that means nothing. The STATUS line names the
last reload instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from gateway.services import Service, ServiceContext

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.config import Config

log = logging.getLogger(__name__)

STATUS_INTERVAL = 5.0
"""Seconds between STATUS refreshes when systemd asked for no watchdog."""


class Notifier:
    """Sends sd_notify datagrams; never raises (systemd being away is not our failure)."""

    def __init__(self, address: str) -> None:
        # An abstract socket's name starts with NUL; systemd writes it as '@' (sd_notify(3)).
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Notifier | None:
        """A notifier for `$NOTIFY_SOCKET`, or None when not started by systemd."""
        address = env.get("NOTIFY_SOCKET", "")
        if not address or not (address.startswith(("/", "@"))):
            return None
        return cls(address)

    def send(self, *lines: str) -> bool:
        """One datagram of `KEY=VALUE` lines; False (logged once) when it could not go."""
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.settimeout(0.0)  # non-blocking: never stall the loop
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("Cannot notify systemd on %r: %s", self.address, exc)
                self._failed = True
            return False
        if self._failed:
            log.info("Notifying systemd works again")
            self._failed = False
        return True

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of `$WATCHDOG_USEC`), or None when off."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    # WATCHDOG_PID names the process the watchdog is meant for (sd_watchdog_enabled(3)).
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None


def status_line(status: Mapping[str, Any]) -> str:
    """`uplink online · devices 3 ok, 1 failed · outbox 12 queued` from `Daemon.status()`."""
    parts: list[str] = []
    uplink = status.get("uplink")
    if isinstance(uplink, dict):
        state = str(uplink.get("state", "?"))
        error = uplink.get("last_error")
        parts.append(f"uplink {state}" + (f" ({error})" if state != "online" and error else ""))
    else:
        parts.append("console output (no mqtt)")
    counts: dict[str, int] = {}
    for row in status.get("devices") or []:
        if isinstance(row, dict):
            state = str(row.get("state", "?"))
            counts[state] = counts.get(state, 0) + 1
    order = ("ok", "starting", "degraded", "failed", "disabled")
    known = [f"{counts.pop(s)} {s}" for s in order if s in counts]
    known += [f"{n} {s}" for s, n in sorted(counts.items())]
    parts.append("devices " + (", ".join(known) if known else "none"))
    outbox = status.get("outbox")
    if isinstance(outbox, dict) and isinstance(outbox.get("depth"), dict):
        depth = sum(v for v in outbox["depth"].values() if isinstance(v, int))
        parts.append(f"outbox {depth} queued")
    reloads = (status.get("gateway") or {}).get("reloads")
    if isinstance(reloads, int) and reloads:
        parts.append(f"{reloads} reload{'s' if reloads != 1 else ''}")
    return " · ".join(parts)


class SystemdService(Service):
    """Tells systemd when the daemon is ready, alive, and what it is doing."""

    name = "systemd"

    def __init__(
        self, ctx: ServiceContext, notifier: Notifier, watchdog: float | None = None
    ) -> None:
        super().__init__(ctx)
        self.notifier = notifier
        self.watchdog = watchdog
        self.pings = 0
        self.skipped = 0
        self._status = ""
        self._ready = False

    async def run(self) -> None:
        """Wait for ready, announce it, then ping and refresh STATUS forever."""
        await self.ctx.ready.wait()
        self._status = self._status_text()
        self.notifier.send("READY=1", f"STATUS={self._status}")
        self._ready = True
        log.info("Told systemd we are ready")
        interval = self.watchdog or STATUS_INTERVAL
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            if now - last > 2 * interval:
                # Something blocked the event loop (measured tick to tick, so a stall
                # anywhere in the loop counts); said once per stall for the journal.
                log.warning("The event loop was blocked for %.1f s", now - last - interval)
            last = now
            self.tick()

    def tick(self) -> None:
        """One heartbeat: WATCHDOG=1 if the core is alive, STATUS= when it changed."""
        lines: list[str] = []
        if self.watchdog is not None:
            if self.ctx.core_alive():
                lines.append("WATCHDOG=1")
                self.pings += 1
            else:
                # A dead core task: let systemd's watchdog restart us if the daemon's own
                # orderly exit does not come first.
                if not self.skipped:
                    log.error("A core task is not running; no longer feeding the watchdog")
                self.skipped += 1
        text = self._status_text()
        if text != self._status:
            self._status = text
            lines.append(f"STATUS={text}")
        if lines:
            self.notifier.send(*lines)

    def _status_text(self) -> str:
        try:
            return status_line(self.ctx.status())
        except Exception:
            # The STATUS line is cosmetic: a bug building it must not stop the watchdog.
            log.exception("Building the systemd STATUS line failed")
            return "running"

    async def reconfigure(self, config: Config) -> None:
        """After a reload: refresh STATUS at once (it counts reloads)."""
        del config
        if self._ready:
            self._status = self._status_text()
            self.notifier.send(f"STATUS={self._status}")

    async def close(self) -> None:
        """Tell systemd we are stopping, then close the socket."""
        self.notifier.send("STOPPING=1", "STATUS=Stopping")
        self.notifier.close()

    def stats(self) -> dict[str, Any]:
        """Watchdog interval and pings sent, for status."""
        return {
            "watchdog_s": self.watchdog,
            "pings": self.pings,
            "skipped": self.skipped,
            "status": self._status,
        }


def build(ctx: ServiceContext) -> Service | None:
    """The systemd service when started by systemd (`$NOTIFY_SOCKET` set), else None."""
    notifier = Notifier.from_env(os.environ)
    if notifier is None:
        return None
    return SystemdService(ctx, notifier, watchdog_interval(os.environ))
