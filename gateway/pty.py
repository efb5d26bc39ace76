"""A pseudo-terminal pair for device simulators: the driver opens `path`, the simulator talks
on the other end.

Both ends are put in raw mode before anyone opens the device side: a pty's default line
discipline would echo what the driver sends and turn CR into LF, which no real serial line
does. The simulator side keeps the device side open itself, so the simulator can write
before the driver connects (Linux returns EIO on the master while no slave fd is open).
`hangup()` closes the simulator's end: the driver's next read fails as on an unplugged USB
adapter (contract.md "Serial timing and tests").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty

READ_CHUNK = 4096


class PtyPair:
    """The simulator's end of a pty pair, as asyncio reads and writes."""

    def __init__(self) -> None:
        """Open the pair (no event loop needed yet)."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        """Where the driver opens its serial port."""
        self._reader: asyncio.StreamReader | None = None
        self.closed = False

    def _ensure_reader(self) -> asyncio.StreamReader:
        if self._reader is None:
            self._reader = asyncio.StreamReader()
            asyncio.get_running_loop().add_reader(self._master, self._on_readable)
        return self._reader

    def _on_readable(self) -> None:
        assert self._reader is not None
        try:
            data = os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: every device-side fd is closed
        if data:
            self._reader.feed_data(data)
        else:
            asyncio.get_running_loop().remove_reader(self._master)
            self._reader.feed_eof()

    async def read(self, n: int = READ_CHUNK) -> bytes:
        """Up to `n` bytes the driver wrote (b"" once the pair is closed)."""
        if self.closed:
            return b""
        return await self._ensure_reader().read(n)

    async def readline(self, separator: bytes = b"\n") -> bytes:
        """One line the driver wrote, with its separator (b"" at the end)."""
        if self.closed:
            return b""
        try:
            return await self._ensure_reader().readuntil(separator)
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    async def write(self, data: bytes) -> None:
        """Write all of `data` towards the driver, waiting while the pty buffer is full."""
        view = memoryview(data)
        while view and not self.closed:
            try:
                sent = os.write(self._master, view)
            except BlockingIOError:
                # The driver is not reading: the tty buffer (about 4 KB) is full.
                await asyncio.sleep(0.005)
                continue
            view = view[sent:]

    def hangup(self) -> None:
        """Close both of the simulator's fds: the driver sees the line go away."""
        if self.closed:
            return
        self.closed = True
        if self._reader is not None:
            with contextlib.suppress(RuntimeError, ValueError):
                asyncio.get_running_loop().remove_reader(self._master)
            self._reader.feed_eof()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    close = hangup


class PtySimulator:
    """Base of a serial-device simulator on a pty pair, used as `async with sim:`.

    Subclasses create `self.pty` and start their tasks in `__aenter__`; leaving the block
    cancels the tasks `_tasks()` returns and closes the pty.
    """

    pty: PtyPair

    @property
    def path(self) -> str:
        """The device side of the pty: the driver's `port`."""
        return self.pty.path

    def _tasks(self) -> tuple[asyncio.Task[None] | None, ...]:
        return (getattr(self, "_task", None),)

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks():
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.pty.close()

    def disconnect(self) -> None:
        """Unplug: the driver's next read fails."""
        self.pty.hangup()
