"""The pricing service's SQLite store: commands, items, per-label jobs and per-SKU versions.

Tables: `commands` (id, per-item results decided at receipt, final ack once done), `items`
(`waiting` → `applied` → `ended`, or `superseded` by a newer version), `jobs` (one upload
to one label: `pending` → `sent` → `confirmed` | `failed` | `superseded`, with the reason,
attempts, upload and confirmation times) and `skus` (highest version received, version on
the labels, the regular price to revert to).

Durability: WAL. What must never be lost — a received command, an item applied or reverted
(a promotion that silently never starts is a wrong price on the shelf) — commits with
`synchronous=FULL`. A job's transitions (thousands per batch) commit with `NORMAL`: after a
power cut a job may fall back from `sent`/`confirmed` to an earlier state and is uploaded
again with the same content, which a label shows identically (design.md "Outbox" measured
that WAL+NORMAL loses recent commits but never corrupts).

One connection, used from the event loop for the small statements and from a worker thread
(`asyncio.to_thread`) for receipt of large batches; a lock serialises them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.price_items import PriceItem

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

ACTIVE = ("pending", "sent")
_ACTIVE_SQL = "('pending', 'sent')"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    cmd_id TEXT PRIMARY KEY, received REAL NOT NULL, results TEXT NOT NULL, final TEXT);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, cmd_id TEXT NOT NULL, idx INTEGER NOT NULL, sku TEXT NOT NULL,
    version INTEGER NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL,
    due REAL, ends REAL);
CREATE INDEX IF NOT EXISTS items_cmd ON items (cmd_id);
CREATE INDEX IF NOT EXISTS items_state ON items (state);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, kind TEXT NOT NULL,
    device TEXT NOT NULL, label TEXT NOT NULL, content TEXT NOT NULL, state TEXT NOT NULL,
    reason TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0,
    uploaded REAL, confirmed REAL);
CREATE INDEX IF NOT EXISTS jobs_item ON jobs (item_id);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (state) WHERE state IN ('pending', 'sent');
CREATE TABLE IF NOT EXISTS skus (
    sku TEXT PRIMARY KEY, latest INTEGER NOT NULL, applied INTEGER, regular INTEGER);
"""


@dataclass(frozen=True, slots=True)
class ItemRow:
    """One stored item."""

    id: int
    cmd_id: str
    idx: int
    item: PriceItem
    state: str


@dataclass(slots=True)
class JobRow:
    """One label upload, as kept in memory while it is active."""

    id: int
    item_id: int
    device: str
    label: str
    content: dict[str, Any]
    state: str
    attempts: int = 0
    next_try: float = 0.0
    uploaded: float | None = None


class PricingStore:
    """The durable state of the pricing service (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        """Open (creating) the database."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._db = db

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextmanager
    def _tx(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._db
            if db is None:
                raise RuntimeError("pricing store is closed")
            if durable:
                db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")
            finally:
                if durable:
                    db.execute("PRAGMA synchronous=NORMAL")

    # -- commands and items --------------------------------------------------------------

    def command(self, cmd_id: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None] | None:
        """(per-item results at receipt, final result or None) of a known command."""
        with self._tx() as db:
            row = db.execute(
                "SELECT results, final FROM commands WHERE cmd_id = ?", (cmd_id,)
            ).fetchone()
        if row is None:
            return None
        return json.loads(row[0]), (json.loads(row[1]) if row[1] else None)

    def latest_versions(self, skus: Sequence[str]) -> dict[str, int]:
        """Highest version received per SKU (those never seen are absent)."""
        with self._tx() as db:
            rows = db.execute(
                f"SELECT sku, latest FROM skus WHERE sku IN ({','.join('?' * len(skus))})",  # noqa: S608 - placeholders only
                list(skus),
            ).fetchall()
        return dict(rows)

    def add_command(
        self,
        cmd_id: str,
        received: float,
        results: list[dict[str, Any]],
        items: list[tuple[int, PriceItem]],
    ) -> dict[int, int]:
        """Store a command and its valid items (waiting); returns {item index: item id}."""
        ids: dict[int, int] = {}
        with self._tx(durable=True) as db:
            db.execute(
                "INSERT INTO commands (cmd_id, received, results) VALUES (?, ?, ?)",
                (cmd_id, received, json.dumps(results)),
            )
            for idx, item in items:
                cur = db.execute(
                    "INSERT INTO items (cmd_id, idx, sku, version, body, state, due, ends) "
                    "VALUES (?, ?, ?, ?, ?, 'waiting', ?, ?)",
                    (
                        cmd_id,
                        idx,
                        item.sku,
                        item.version,
                        json.dumps(item.to_dict()),
                        item.valid_from or 0.0,
                        item.valid_to,
                    ),
                )
                ids[idx] = int(cur.lastrowid or 0)
                db.execute(
                    "INSERT INTO skus (sku, latest) VALUES (?, ?) ON CONFLICT (sku) "
                    "DO UPDATE SET latest = max(latest, excluded.latest)",
                    (item.sku, item.version),
                )
        return ids

    def unfinished(self) -> dict[str, list[int]]:
        """Commands without a final result, with their active `apply` job ids."""
        out: dict[str, list[int]] = {}
        with self._tx() as db:
            for (cmd_id,) in db.execute("SELECT cmd_id FROM commands WHERE final IS NULL"):
                out[cmd_id] = []
            rows = db.execute(
                "SELECT i.cmd_id, j.id FROM jobs j JOIN items i ON i.id = j.item_id "
                "JOIN commands c ON c.cmd_id = i.cmd_id WHERE c.final IS NULL "
                "AND j.kind = 'apply' AND j.state IN ('pending', 'sent')"
            ).fetchall()
        for cmd_id, job_id in rows:
            out[cmd_id].append(job_id)
        return out

    def finish_command(self, cmd_id: str, final: dict[str, Any]) -> None:
        """Keep the final result (re-sent when the same id comes again after a restart)."""
        with self._tx(durable=True) as db:
            db.execute(
                "UPDATE commands SET final = ? WHERE cmd_id = ?", (json.dumps(final), cmd_id)
            )

    def _item(self, row: tuple[Any, ...]) -> ItemRow:
        return ItemRow(row[0], row[1], row[2], PriceItem.from_dict(json.loads(row[3])), row[4])

    def item(self, item_id: int) -> ItemRow:
        """One item by id."""
        with self._tx() as db:
            row = db.execute(
                "SELECT id, cmd_id, idx, body, state FROM items WHERE id = ?", (item_id,)
            ).fetchone()
        return self._item(row)

    def due(self, now: float) -> tuple[list[ItemRow], list[ItemRow]]:
        """(waiting items whose start has come, applied items whose end has come), oldest first."""
        with self._tx() as db:
            start = db.execute(
                "SELECT id, cmd_id, idx, body, state FROM items WHERE state = 'waiting' "
                "AND due <= ? ORDER BY due, version, id",
                (now,),
            ).fetchall()
            end = db.execute(
                "SELECT id, cmd_id, idx, body, state FROM items WHERE state = 'applied' "
                "AND ends IS NOT NULL AND ends <= ? ORDER BY ends, id",
                (now,),
            ).fetchall()
        return [self._item(r) for r in start], [self._item(r) for r in end]

    def next_due(self) -> float | None:
        """The earliest future start or end, if any."""
        with self._tx() as db:
            row = db.execute(
                "SELECT min(t) FROM (SELECT min(due) AS t FROM items WHERE state = 'waiting' "
                "UNION ALL SELECT min(ends) FROM items WHERE state = 'applied')"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def sku_state(self, sku: str) -> tuple[int | None, int | None]:
        """(version on the labels, id of the regular-price item) of a SKU."""
        with self._tx() as db:
            row = db.execute("SELECT applied, regular FROM skus WHERE sku = ?", (sku,)).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def apply(
        self,
        item: ItemRow,
        state: str,
        jobs: list[tuple[str, str, dict[str, Any]]],
        kind: str,
        *,
        version: int | None,
        regular: bool,
    ) -> list[JobRow]:
        """Move an item to `state` and create its label jobs, superseding older active ones."""
        made: list[JobRow] = []
        with self._tx(durable=True) as db:
            db.execute("UPDATE items SET state = ? WHERE id = ?", (state, item.id))
            if version is not None:
                db.execute("UPDATE skus SET applied = ? WHERE sku = ?", (version, item.item.sku))
            if regular:
                db.execute("UPDATE skus SET regular = ? WHERE sku = ?", (item.id, item.item.sku))
            for device, label, content in jobs:
                db.execute(
                    "UPDATE jobs SET state = 'superseded', reason = 'newer content' "
                    "WHERE device = ? AND label = ? AND state IN ('pending', 'sent')",
                    (device, label),
                )
                cur = db.execute(
                    "INSERT INTO jobs (item_id, kind, device, label, content, state) "
                    "VALUES (?, ?, ?, ?, ?, 'pending')",
                    (item.id, kind, device, label, json.dumps(content)),
                )
                made.append(
                    JobRow(int(cur.lastrowid or 0), item.id, device, label, content, "pending")
                )
        return made

    # -- jobs ----------------------------------------------------------------------------

    def active_jobs(self) -> list[JobRow]:
        """Jobs still pending or sent (resumed after a restart), oldest first."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, item_id, device, label, content, state, attempts, next_try, uploaded "
                "FROM jobs WHERE state IN ('pending', 'sent') ORDER BY id"
            ).fetchall()
        return [
            JobRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7], r[8]) for r in rows
        ]

    def update_job(
        self, job: JobRow, *, reason: str | None = None, confirmed: float | None = None
    ) -> None:
        """Persist a job's state, attempts, next try, upload time (and reason, confirmation)."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, attempts = ?, next_try = ?, uploaded = ?, "
                "reason = coalesce(?, reason), confirmed = coalesce(?, confirmed) WHERE id = ?",
                (job.state, job.attempts, job.next_try, job.uploaded, reason, confirmed, job.id),
            )

    def report(self, cmd_id: str) -> dict[int, dict[str, Any]]:
        """Per item index of a command: label counts by state, failures, latest times."""
        out: dict[int, dict[str, Any]] = {}
        with self._tx() as db:
            rows = db.execute(
                "SELECT i.idx, i.state, j.state, j.label, j.reason, j.uploaded, j.confirmed "
                "FROM items i LEFT JOIN jobs j ON j.item_id = i.id AND j.kind = 'apply' "
                "WHERE i.cmd_id = ? ORDER BY i.idx, j.id",
                (cmd_id,),
            ).fetchall()
        for idx, item_state, state, label, reason, uploaded, confirmed in rows:
            entry = out.setdefault(
                idx,
                {
                    "item_state": item_state,
                    "states": {},
                    "failed": [],
                    "uploaded": None,
                    "confirmed": None,
                },
            )
            if state is None:
                continue
            entry["states"][state] = entry["states"].get(state, 0) + 1
            if state == "failed":
                entry["failed"].append({"label": label, "reason": reason or "failed"})
            if uploaded is not None:
                entry["uploaded"] = max(entry["uploaded"] or 0.0, uploaded)
            if confirmed is not None:
                entry["confirmed"] = max(entry["confirmed"] or 0.0, confirmed)
        return out

    def prune(self, before: float) -> dict[str, int]:
        """Forget finished history of commands received before `before`; returns the counts.

        Kept whatever still matters: unfinished commands, items waiting for their start,
        promotions still to end, each SKU's regular-price item (reverts go back to it) and
        active jobs. Without this a shop updating its prices daily grows the file by its
        label count every day, for years.
        """
        old = (
            "SELECT i.id FROM items i JOIN commands c ON c.cmd_id = i.cmd_id "
            "WHERE c.final IS NOT NULL AND c.received < :before"
        )
        with self._tx() as db:
            jobs = db.execute(
                f"DELETE FROM jobs WHERE state NOT IN {_ACTIVE_SQL} AND item_id IN ({old})",  # noqa: S608 - constants
                {"before": before},
            ).rowcount
            items = db.execute(
                f"DELETE FROM items WHERE id IN ({old}) AND (state IN ('ended', 'superseded') "  # noqa: S608 - constants
                "OR (state = 'applied' AND ends IS NULL AND id NOT IN "
                "(SELECT regular FROM skus WHERE regular IS NOT NULL))) "
                f"AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.item_id = items.id "
                f"AND j.state IN {_ACTIVE_SQL})",
                {"before": before},
            ).rowcount
            commands = db.execute(
                "DELETE FROM commands WHERE final IS NOT NULL AND received < ? AND NOT EXISTS "
                "(SELECT 1 FROM items i WHERE i.cmd_id = commands.cmd_id)",
                (before,),
            ).rowcount
        return {"commands": commands, "items": items, "jobs": jobs}

    def summary(self) -> dict[str, int]:
        """Jobs by state, and items waiting for their start."""
        with self._tx() as db:
            jobs = dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
            waiting = db.execute("SELECT count(*) FROM items WHERE state = 'waiting'").fetchone()
        return {**jobs, "scheduled_items": int(waiting[0])}
