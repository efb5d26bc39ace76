"""Run `storegw run` in a subprocess and watch its output lines (daemon-level tests)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class Proc:
    """A running `storegw run` with its stdout/stderr lines collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self._new = asyncio.Event()
        self._readers = [
            asyncio.create_task(self._read(proc.stdout, self.out)),
            asyncio.create_task(self._read(proc.stderr, self.err)),
        ]

    async def _read(self, stream, sink: list[str]) -> None:
        while line := await stream.readline():
            sink.append(line.decode().rstrip("\n"))
            self._new.set()

    async def wait_for(
        self, text: str, where: str = "err", timeout: float = 15.0, after: int = 0
    ) -> str:
        lines = self.err if where == "err" else self.out
        deadline = time.monotonic() + timeout
        while True:
            for line in lines[after:]:
                if text in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen in {where}:\n" + "\n".join(lines[-30:]))
            self._new.clear()
            try:
                async with asyncio.timeout(left):
                    await self._new.wait()
            except TimeoutError:
                pass

    async def finish(self, timeout: float = 15.0) -> int:
        rc = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.gather(*self._readers)
        return rc


async def start(config: Path) -> Proc:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "run",
        "-c",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Proc(proc)
