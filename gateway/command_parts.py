"""Multi-part commands: collect the parts of one command and rebuild the whole (IO-free).

Contract (contract.md "Commands and acks"): anything over 120 KB travels in parts; downward
every part is a command with the same `id`, carrying `"part": {"of": <id>, "n": <1-based>,
"total": <N>}`, and the last part (or every part) a `sha256` of the reassembled bytes.

What is cut into parts (decided here, documented in docs/asyncapi.yaml and docs/inference.md):
the command's `params`, written as JSON text (UTF-8). Part n carries slice n of that text as
`params: {"chunk": "<text>"}`; `action` is repeated in every part; `sig`, when present, is
the signature of the whole command `{"id", "action", "params"}` (the same bytes a one-piece
command is signed over) and rides on the last part or on every part. `sha256` is the hex
SHA-256 of the concatenated chunks encoded as UTF-8. The router verifies the whole command
exactly as if it had arrived in one piece.

`Collector` holds the commands being collected, bounded in number and size; each has a
timer task that reports it `incomplete` when parts stop arriving.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.command_rules import CommandRejected

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

Key = tuple[str, str]  # (command name, command id)

MAX_COLLECTING = 4  # multi-part commands collected at once (each may hold megabytes)
# A bound on the parts of one command: 1000 parts of 120 KB are 120 MB, far beyond a model.
MAX_PARTS = 1000
PART_FIELDS = frozenset({"id", "action", "params", "sig", "part", "sha256"})
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Part:
    """One validated part of a multi-part command."""

    n: int
    total: int
    chunk: str
    action: str | None
    sig: str | None
    sha256: str | None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def read_part(cmd_id: str, raw: dict[str, Any]) -> Part:
    """The part a command carries; refuses malformed part headers and extra fields."""
    unknown = sorted(set(raw) - PART_FIELDS)
    if unknown:
        detail = f"Unknown field(s) {', '.join(map(repr, unknown))} in a multi-part command."
        raise CommandRejected("invalid_value", detail)
    header = raw["part"]
    if not isinstance(header, dict) or set(header) != {"of", "n", "total"}:
        raise CommandRejected("invalid_value", '\'part\' must be {"of", "n", "total"}.')
    if header["of"] != cmd_id:
        detail = f"'part.of' must equal the command id {cmd_id!r} (every part shares it)."
        raise CommandRejected("invalid_value", detail)
    n, total = header["n"], header["total"]
    if not (_positive_int(n) and _positive_int(total) and n <= total <= MAX_PARTS):
        detail = f"'part.n' and 'part.total' must be integers with 1 <= n <= total <= {MAX_PARTS}."
        raise CommandRejected("invalid_value", detail)
    params = raw.get("params")
    if (
        not isinstance(params, dict)
        or set(params) != {"chunk"}
        or not isinstance(params["chunk"], str)
    ):
        detail = "Each part's 'params' must be {\"chunk\": <a slice of the params' JSON text>}."
        raise CommandRejected("invalid_value", detail)
    sha = raw.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        raise CommandRejected("invalid_value", "'sha256' must be 64 lowercase hex digits.")
    action, sig = raw.get("action"), raw.get("sig")
    if action is not None and not isinstance(action, str):
        raise CommandRejected("invalid_value", "'action' must be a string.")
    if sig is not None and not isinstance(sig, str):
        raise CommandRejected("bad_signature", "'sig' must be a base64 string.")
    return Part(n, total, params["chunk"], action, sig, sha)


@dataclass(slots=True)
class Assembly:
    """The parts of one command received so far."""

    total: int
    action: str | None
    chunks: dict[int, str] = field(default_factory=dict)
    size: int = 0
    sig: str | None = None
    sha256: str | None = None

    def missing(self) -> list[int]:
        """Part numbers not received yet."""
        return [n for n in range(1, self.total + 1) if n not in self.chunks]

    def add(self, cmd_id: str, part: Part, max_bytes: int) -> None:
        """Take one part; a re-sent part is ignored; inconsistent headers are refused."""
        if part.total != self.total or part.action != self.action:
            detail = (
                f"Part {part.n} of {cmd_id!r} disagrees with the first part received "
                "('part.total' or 'action' differ); send the command again under a new id."
            )
            raise CommandRejected("invalid_value", detail)
        for name in ("sig", "sha256"):
            value = getattr(part, name)
            if value is None:
                continue
            if getattr(self, name) not in (None, value):
                detail = f"Parts of {cmd_id!r} carry different {name!r} values."
                raise CommandRejected("invalid_value", detail)
            setattr(self, name, value)
        if part.n in self.chunks:
            return  # a re-sent part (at-least-once delivery): the first copy stands
        self.size += len(part.chunk)
        if self.size > max_bytes:
            detail = (
                f"The parts of {cmd_id!r} add up to more than {max_bytes} characters, "
                "the most this command accepts."
            )
            raise CommandRejected("too_large", detail)
        self.chunks[part.n] = part.chunk

    def whole(self, cmd_id: str) -> dict[str, Any]:
        """The reassembled command (all parts present): checked against `sha256`, parsed."""
        if self.sha256 is None:
            detail = "No part carried 'sha256' of the reassembled params; the last part must."
            raise CommandRejected("missing_field", detail)
        data = "".join(self.chunks[n] for n in range(1, self.total + 1)).encode()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            detail = (
                f"The reassembled params of {cmd_id!r} hash to {digest[:12]}..., "
                f"not {self.sha256[:12]}...: a part was damaged or is from another command."
            )
            raise CommandRejected("sha256_mismatch", detail)
        try:
            params = json.loads(data)
        except (ValueError, RecursionError) as exc:
            detail = f"The reassembled params are not JSON: {exc}."
            raise CommandRejected("malformed_json", detail) from None
        if not isinstance(params, dict):
            raise CommandRejected("invalid_value", "The reassembled 'params' must be an object.")
        raw: dict[str, Any] = {"id": cmd_id, "params": params}
        if self.action is not None:
            raw["action"] = self.action
        if self.sig is not None:
            raw["sig"] = self.sig
        return raw


@dataclass(slots=True)
class _Entry:
    assembly: Assembly
    touched: asyncio.Event
    timer: asyncio.Task[None] | None = None


class Collector:
    """Multi-part commands being collected; `on_incomplete(key, detail)` when one times out."""

    def __init__(
        self, timeout: float, on_incomplete: Callable[[Key, str], Awaitable[None]]
    ) -> None:
        self.timeout = timeout
        self._on_incomplete = on_incomplete
        self._entries: dict[Key, _Entry] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: Key, part: Part, max_bytes: int) -> dict[str, Any] | None:
        """Take a part: the whole command once complete, else None; a refusal drops it all."""
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= MAX_COLLECTING:
                detail = f"{len(self._entries)} multi-part commands are arriving; retry later."
                raise CommandRejected("busy", detail)
            entry = _Entry(Assembly(part.total, part.action), asyncio.Event())
            self._entries[key] = entry
            entry.timer = asyncio.create_task(
                self._expire(key), name=f"cmd:parts:{key[0]}:{key[1]}"
            )
        entry.touched.set()
        try:
            entry.assembly.add(key[1], part, max_bytes)
            if entry.assembly.missing():
                return None
            whole = entry.assembly.whole(key[1])
        except CommandRejected:
            self.drop(key)
            raise
        self.drop(key)
        return whole

    def drop(self, key: Key) -> None:
        """Forget a command's parts and stop its timer."""
        entry = self._entries.pop(key, None)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()

    def cancel_all(self) -> list[asyncio.Task[None]]:
        """Stop every timer (router closing); returns the tasks to await."""
        tasks = [e.timer for e in self._entries.values() if e.timer is not None]
        for task in tasks:
            task.cancel()
        self._entries.clear()
        return tasks

    async def _expire(self, key: Key) -> None:
        entry = self._entries[key]
        while True:
            entry.touched.clear()
            try:
                async with asyncio.timeout(self.timeout):
                    await entry.touched.wait()
            except TimeoutError:
                break
        del self._entries[key]
        missing = entry.assembly.missing()
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        detail = (
            f"Part(s) {shown} of {entry.assembly.total} did not arrive within "
            f"{self.timeout:g} s of the previous one; send the command again."
        )
        await self._on_incomplete(key, detail)


def split_params(params: dict[str, Any], chunk_chars: int) -> tuple[list[str], str]:
    """A sender's side: (chunks, sha256) of `params` for parts of at most `chunk_chars`."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    chunks = [text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars)] or [""]
    return chunks, hashlib.sha256(text.encode()).hexdigest()
