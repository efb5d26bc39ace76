"""Uplink payload conventions: message ids (ULID), timestamps, and the JSON encoding.

Every uplink message carries `id` (a ULID: 26 characters, time-sortable, unique, so the
cloud can de-duplicate at-least-once delivery), `ts` (RFC 3339 UTC with milliseconds and
`Z`) and `gw` (`gateway.id`). Payloads stamped before the system clock was synchronised
carry `"clock_synced": false` (contract.md "Uplink payloads").
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class UlidFactory:
    """Monotonic ULIDs: 48-bit millisecond time + 80 random bits, incremented within a ms.

    Monotonic within the process (the spec's "monotonic factory"), so ids sort in the order
    they were made even when many fall in the same millisecond.
    """

    __slots__ = ("_last_ms", "_last_rand")

    def __init__(self) -> None:
        self._last_ms = -1
        self._last_rand = 0

    def new(self, now: float | None = None) -> str:
        """A new ULID string for wall time `now` (default: the current time)."""
        ms = int((time.time() if now is None else now) * 1000)
        if ms <= self._last_ms:
            ms = self._last_ms
            rand = (self._last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        self._last_ms, self._last_rand = ms, rand
        value = (ms << 80) | rand
        out = []
        for _ in range(26):
            out.append(_CROCKFORD[value & 31])
            value >>= 5
        return "".join(reversed(out))


def ulid_time(ulid: str) -> float:
    """The wall time (seconds) encoded in a ULID."""
    value = 0
    for ch in ulid[:10]:
        value = value * 32 + _CROCKFORD.index(ch)
    return value / 1000


def rfc3339(ts: float) -> str:
    """RFC 3339 UTC with milliseconds and `Z`: `2026-12-02T10:46:29.123Z`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _default(obj: object) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)  # money travels as a decimal string ("12.90"), never a float
    raise TypeError(f"cannot encode {type(obj).__name__} in a payload")


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; Decimals as strings."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=_default).encode()


PART_LIMIT = 120_000  # contract.md: anything over 120 KB travels in parts
_PART_CHARS = 50_000  # of the whole's ASCII JSON per part: at most 100 KB once escaped


def in_parts(whole: dict[str, Any], keep: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The bodies of the parts carrying `whole` (a stamped payload over `PART_LIMIT`).

    contract.md "Anything over 120 KB travels in parts": each part is its own message (the
    caller stamps it with its own `id`) with `part: {of: <whole's id>, n, total}`, the
    `sha256` of the reassembled text and `data`, a slice of the whole's JSON text (ASCII
    only, so slices never split a character). Concatenate `data` of parts 1..total and
    parse it to get the whole back. `keep` copies fields of the whole into every part (an
    ack's `cmd_id` and `outcome`), so a reader can route parts without reassembling.
    """
    text = json.dumps(whole, separators=(",", ":"), default=_default)
    digest = hashlib.sha256(text.encode()).hexdigest()
    chunks = [text[i : i + _PART_CHARS] for i in range(0, len(text), _PART_CHARS)]
    head = {key: whole[key] for key in keep if key in whole}
    return [
        {
            **head,
            "part": {"of": whole["id"], "n": n, "total": len(chunks)},
            "sha256": digest,
            "data": chunk,
        }
        for n, chunk in enumerate(chunks, 1)
    ]


class Stamper:
    """Adds `id`, `ts`, `gw` (and `clock_synced` when false) to outgoing payloads."""

    __slots__ = ("_ids", "clock_synced", "gw")

    def __init__(self, gw: str) -> None:
        self.gw = gw
        self._ids = UlidFactory()
        self.clock_synced = True

    def stamp(self, body: dict[str, Any], ts: float | None = None) -> dict[str, Any]:
        """A new payload: the envelope fields first, then `body`."""
        now = time.time() if ts is None else ts
        head: dict[str, Any] = {"id": self._ids.new(), "ts": rfc3339(now), "gw": self.gw}
        if not self.clock_synced:
            head["clock_synced"] = False
        head.update(body)
        return head
