"""The command de-duplication store: final acks by command, remembered across restarts.

A command repeated within the remembered window (default 7 days) does no work again: the
router re-sends the ack stored here (contract.md "Commands and acks"). The store is a small
SQLite table keyed by (command name, command id), pruned by age and bounded in rows.

Durability: WAL with `synchronous=NORMAL`. A power cut may forget the last few acks (never
corrupt the file); the price is that a command re-sent after such a cut may run twice, which
the handlers tolerate (they are idempotent by design: prices, config apply, model install).
The alternative, FULL, would put an fsync of an SD card on the event loop for every command.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS acks (
    name TEXT NOT NULL,
    id TEXT NOT NULL,
    stored_at REAL NOT NULL,
    ack TEXT NOT NULL,
    PRIMARY KEY (name, id)
);
CREATE INDEX IF NOT EXISTS acks_stored_at ON acks (stored_at);
"""

# Prune at most this often while running (and always at open): a cheap indexed DELETE.
_PRUNE_EVERY = 60.0


class CommandStore:
    """Final acks of handled commands, by (name, id), for `remember` seconds."""

    __slots__ = ("_clock", "_db", "_last_prune", "max_entries", "path", "remember")

    def __init__(
        self,
        path: Path,
        remember: float,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.remember = remember
        self.max_entries = max_entries
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._last_prune = 0.0

    def open(self) -> None:
        """Open (or create) the database; an unreadable file is moved aside and replaced."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(self._clock())}")
            log.error(
                "Command store %s is unreadable (%s); moved it to %s and started a fresh one",
                self.path,
                exc,
                aside,
            )
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            self._db = self._connect()
        self.prune()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM acks").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        """Close the database (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the command store is not open")
        return self._db

    def get(self, name: str, cmd_id: str) -> dict[str, Any] | None:
        """The stored final ack body of command `name`/`cmd_id`, if still remembered."""
        row = (
            self._conn()
            .execute(
                "SELECT ack FROM acks WHERE name = ? AND id = ? AND stored_at >= ?",
                (name, cmd_id, self._clock() - self.remember),
            )
            .fetchone()
        )
        if row is None:
            return None
        ack: dict[str, Any] = json.loads(row[0])
        return ack

    def put(self, name: str, cmd_id: str, ack: dict[str, Any]) -> None:
        """Remember the final ack body of a handled command."""
        now = self._clock()
        self._conn().execute(
            "INSERT OR REPLACE INTO acks (name, id, stored_at, ack) VALUES (?, ?, ?, ?)",
            (name, cmd_id, now, json.dumps(ack, separators=(",", ":"), default=str)),
        )
        if now - self._last_prune >= _PRUNE_EVERY:
            self.prune()

    def prune(self) -> int:
        """Forget acks older than `remember`, then the oldest beyond `max_entries`."""
        db = self._conn()
        now = self._clock()
        self._last_prune = now
        removed = db.execute("DELETE FROM acks WHERE stored_at < ?", (now - self.remember,))
        count = removed.rowcount
        over = db.execute(
            "DELETE FROM acks WHERE rowid IN "
            "(SELECT rowid FROM acks ORDER BY stored_at DESC LIMIT -1 OFFSET ?)",
            (self.max_entries,),
        )
        return count + over.rowcount

    def __len__(self) -> int:
        """Rows currently held (remembered or not yet pruned)."""
        row = self._conn().execute("SELECT count(*) FROM acks").fetchone()
        return int(row[0])
