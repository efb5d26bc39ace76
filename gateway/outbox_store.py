"""The outbox's SQLite layer: schema, one group-commit transaction, batch reads, drops.

Everything here is blocking and runs on the outbox's single worker thread
(`gateway/outbox.py` owns the thread and the asyncio side), so the event loop never waits
on an fsync. The store keeps cheap counters (rows and bytes per class) so that size
accounting never needs a `SELECT SUM` per message.

Durability (docs/outbox.md): WAL with `synchronous=FULL`: a transaction whose COMMIT has
returned survives a process crash and a power cut (the WAL is fsynced at every commit).
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class DeliveryClass(StrEnum):
    """Delivery class of an outbox message (contract.md "Delivery classes and limits")."""

    BUSINESS = "business"
    TELEMETRY = "telemetry"


CLASSES = (DeliveryClass.BUSINESS, DeliveryClass.TELEMETRY)
_CODE = {DeliveryClass.BUSINESS: 0, DeliveryClass.TELEMETRY: 1}
_CLASS = {0: DeliveryClass.BUSINESS, 1: DeliveryClass.TELEMETRY}
# Per-row bookkeeping SQLite adds on top of topic + payload; an estimate, so that many tiny
# messages still count against max_size.
ROW_OVERHEAD = 32
_DROP_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS msg (
    seq INTEGER PRIMARY KEY,
    cls INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS msg_cls_seq ON msg (cls, seq);
"""


@dataclass(frozen=True, slots=True)
class Stored:
    """One message read back from the outbox."""

    seq: int
    topic: str
    payload: bytes
    cls: DeliveryClass
    retain: bool
    created: float


@dataclass(slots=True)
class Incoming:
    """A put waiting for the next group commit; `outcome` is filled by the commit."""

    topic: str
    payload: bytes
    cls: DeliveryClass
    retain: bool
    created: float
    outcome: str = "pending"  # "stored", "refused" or "full" after the commit


@dataclass(slots=True)
class Counters:
    """Per-class rows and bytes, highest seq, oldest timestamp; drops and commits."""

    rows: dict[DeliveryClass, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    bytes: dict[DeliveryClass, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    max_seq: dict[DeliveryClass, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    oldest: dict[DeliveryClass, float | None] = field(
        default_factory=lambda: dict.fromkeys(CLASSES)
    )
    dropped: dict[str, int] = field(default_factory=lambda: {"full": 0, "ttl": 0, "refused": 0})
    commits: int = 0
    rows_written: int = 0
    next_seq: int = 1


def entry_size(topic: str, payload: bytes) -> int:
    """The bytes one message counts against `max_size`."""
    return len(payload) + len(topic) + ROW_OVERHEAD


def _quick_check(db: sqlite3.Connection) -> None:
    """Raise sqlite3.DatabaseError unless SQLite's quick integrity check says ok."""
    row = db.execute("PRAGMA quick_check").fetchone()
    if row is None or row[0] != "ok":
        raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")


class Store:
    """A blocking SQLite outbox: call every method from the same worker thread."""

    def __init__(self, path: Path, *, max_size: int, min_free_disk: int) -> None:
        self.path = path
        self.max_size = max_size
        self.min_free_disk = min_free_disk
        self.counters = Counters()
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection."""
        if self._db is None:
            raise RuntimeError("outbox store is not open")
        return self._db

    def open(self) -> None:
        """Open (creating if needed) and check the file; raises sqlite3.DatabaseError if bad."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per group commit.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced on every COMMIT. NORMAL would lose every commit since
            # the last checkpoint on a power cut (measured, design.md "Outbox").
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA journal_size_limit=67108864")  # keep the WAL file bounded
            _quick_check(db)
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        self._db = db
        self._load_counters()

    def _load_counters(self) -> None:
        c = self.counters
        for code, rows, size, top in self.db.execute(
            "SELECT cls, COUNT(*), COALESCE(SUM(size), 0), MAX(seq) FROM msg GROUP BY cls"
        ):
            cls = _CLASS[code]
            c.rows[cls], c.bytes[cls], c.max_seq[cls] = rows, size, top
        (top,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM msg").fetchone()
        c.next_seq = top + 1
        self._refresh_oldest()

    def close(self) -> None:
        """Close the connection (a checkpoint happens on the last close in WAL mode)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def total_bytes(self) -> int:
        """Counted bytes of every stored message."""
        return sum(self.counters.bytes.values())

    def file_bytes(self) -> int:
        """Bytes the database, WAL and shared-memory files take on disk."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            p = self.path.with_name(self.path.name + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    def commit(
        self, puts: list[Incoming], acks: list[int], ttl: dict[DeliveryClass, float]
    ) -> None:
        """One transaction: deletes for acks, TTL and size drops, then the inserts."""
        db, c = self.db, self.counters
        db.execute("BEGIN IMMEDIATE")
        try:
            if acks:
                self._delete_seqs(acks)
            if ttl:
                self._drop_expired(ttl)
            rows = self._admit(puts)
            if rows:
                db.executemany(
                    "INSERT INTO msg (seq, cls, topic, payload, retain, created, size)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._load_counters()  # the in-memory view must match what is on disk
            raise
        c.commits += 1
        c.rows_written += len(rows)
        self._refresh_oldest()

    def _admit(self, puts: list[Incoming]) -> list[tuple[int, int, str, bytes, int, float, int]]:
        """Decide each put (stored / refused / full), making room by dropping old telemetry."""
        c = self.counters
        incoming = sum(entry_size(p.topic, p.payload) for p in puts)
        over = self.total_bytes() + incoming - self.max_size
        if over > 0:
            over -= self._drop_oldest_telemetry(over)
        disk_low = False
        if any(p.cls is DeliveryClass.BUSINESS for p in puts):
            disk_low = shutil.disk_usage(self.path.parent).free < self.min_free_disk
        rows = []
        for p in puts:
            size = entry_size(p.topic, p.payload)
            if p.cls is DeliveryClass.TELEMETRY and over > 0:
                # Business alone fills the outbox: new telemetry is refused (contract.md).
                p.outcome = "refused"
                c.dropped["refused"] += 1
                over -= size
                continue
            if p.cls is DeliveryClass.BUSINESS and disk_low:
                p.outcome = "full"
                continue
            seq = c.next_seq
            c.next_seq += 1
            rows.append((seq, _CODE[p.cls], p.topic, p.payload, int(p.retain), p.created, size))
            c.rows[p.cls] += 1
            c.bytes[p.cls] += size
            c.max_seq[p.cls] = seq
            p.outcome = "stored"
        return rows

    def _drop_oldest_telemetry(self, need: int) -> int:
        """Delete the oldest telemetry rows until `need` bytes are freed; returns bytes freed."""
        freed = 0
        code = _CODE[DeliveryClass.TELEMETRY]
        while freed < need:
            chunk = self.db.execute(
                "SELECT seq, size FROM msg WHERE cls = ? ORDER BY seq LIMIT ?",
                (code, _DROP_CHUNK),
            ).fetchall()
            if not chunk:
                break
            last = len(chunk)
            for i, (_, size) in enumerate(chunk):
                freed += size
                if freed >= need:
                    last = i + 1
                    break
            self._delete_through(DeliveryClass.TELEMETRY, chunk[:last], "full")
        return freed

    def _drop_expired(self, ttl: dict[DeliveryClass, float]) -> None:
        now = time.time()
        for cls, seconds in ttl.items():
            cutoff = now - seconds
            oldest = self.counters.oldest[cls]
            if oldest is None or oldest >= cutoff:
                continue
            while True:
                chunk = self.db.execute(
                    "SELECT seq, size, created FROM msg WHERE cls = ? ORDER BY seq LIMIT ?",
                    (_CODE[cls], _DROP_CHUNK),
                ).fetchall()
                # Rows are in seq order, which is creation order: stop at the first fresh one.
                expired: list[tuple[int, int]] = []
                for seq, size, created in chunk:
                    if created >= cutoff:
                        break
                    expired.append((seq, size))
                if expired:
                    self._delete_through(cls, expired, "ttl")
                if len(expired) < _DROP_CHUNK:
                    break

    def _delete_through(self, cls: DeliveryClass, rows: list[tuple[int, int]], why: str) -> None:
        """Delete the given leading rows (seq, size) of a class and count them as dropped."""
        self.db.execute("DELETE FROM msg WHERE cls = ? AND seq <= ?", (_CODE[cls], rows[-1][0]))
        self.counters.rows[cls] -= len(rows)
        self.counters.bytes[cls] -= sum(size for _, size in rows)
        self.counters.dropped[why] += len(rows)

    def _delete_seqs(self, seqs: list[int]) -> None:
        c = self.counters
        for i in range(0, len(seqs), _DROP_CHUNK):
            part = seqs[i : i + _DROP_CHUNK]
            marks = ",".join("?" * len(part))
            for code, size in self.db.execute(
                f"DELETE FROM msg WHERE seq IN ({marks}) RETURNING cls, size",  # noqa: S608
                part,
            ).fetchall():
                cls = _CLASS[code]
                c.rows[cls] -= 1
                c.bytes[cls] -= size

    def _refresh_oldest(self) -> None:
        for cls in CLASSES:
            row = self.db.execute(
                "SELECT created FROM msg WHERE cls = ? ORDER BY seq LIMIT 1", (_CODE[cls],)
            ).fetchone()
            self.counters.oldest[cls] = None if row is None else row[0]

    def read(self, cls: DeliveryClass, after: int, limit: int) -> list[Stored]:
        """Up to `limit` messages of `cls` with seq greater than `after`, oldest first."""
        return [
            Stored(seq, topic, payload, cls, bool(retain), created)
            for seq, topic, payload, retain, created in self.db.execute(
                "SELECT seq, topic, payload, retain, created FROM msg"
                " WHERE cls = ? AND seq > ? ORDER BY seq LIMIT ?",
                (_CODE[cls], after, limit),
            )
        ]
