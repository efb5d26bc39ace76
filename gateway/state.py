"""Small persisted state: per-device key-value stores and the daemon's own (counter baselines).

Kept in one `sqlitedict` file in the state directory. Reads happen once at start; writes
are batched: the daemon saves what changed periodically and at shutdown, in a worker
thread so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlitedict import SqliteDict

from gateway.driver import DeviceState

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)


class StateStore:
    """Named `DeviceState`s backed by one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._states: dict[str, DeviceState] = {}
        self._db: SqliteDict | None = None

    def open(self) -> None:
        """Open (creating) the file and load every stored state."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = SqliteDict(str(self.path), autocommit=False, outer_stack=False)
            loaded = {key: DeviceState(value) for key, value in self._db.items()}
        except Exception as exc:  # a damaged state file must not stop the gateway
            aside = self.path.with_name(self.path.name + ".corrupt")
            log.error("State file %s is unreadable (%s); moved aside to %s", self.path, exc, aside)
            if self._db is not None:
                self._db.close()
            self.path.replace(aside)
            self._db = SqliteDict(str(self.path), autocommit=False, outer_stack=False)
            loaded = {}
        self._states.update(loaded)

    def get(self, name: str) -> DeviceState:
        """The state called `name` (created empty on first use)."""
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = DeviceState()
        return state

    def _save_sync(self, changed: dict[str, dict[str, Any]]) -> None:
        if self._db is None:
            return
        for key, value in changed.items():
            self._db[key] = value
        self._db.commit()

    async def save(self) -> None:
        """Write the states that changed since the last save."""
        changed = {}
        for key, state in self._states.items():
            if state.dirty:
                changed[key] = state.as_dict()
                state.dirty = False
        if changed:
            await asyncio.to_thread(self._save_sync, changed)

    def close(self) -> None:
        """Close the file (call `save` first)."""
        if self._db is not None:
            self._db.close()
            self._db = None
