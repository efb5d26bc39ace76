"""The command channel: route commands from `P/cmd/{name}` to handlers and send their acks.

Contract (contract.md "Commands and acks", design.md "Commands and acks"): every command gets
at most one `accepted` ack and exactly one final `done` or `rejected` ack on
`P/cmd/{name}/ack`. Bad input is answered with a `rejected` ack carrying a stable `reason`
(checks in `gateway.command_rules`), never a crash. A repeated id within the remembered
window does no work again: the stored final ack is re-sent with `"duplicate": true`, or
`accepted` again while the first is still running.

Decisions taken here:
- De-duplication is keyed by (command name, id): the re-sent ack must go to the same ack
  topic, and one id reused for two different commands is two commands.
- Only acks of commands that reached their handler are remembered. A command refused before
  any work (unknown name, bad signature, a missing field, busy) can be corrected and re-sent
  under the same id.
- Unknown top-level fields are refused (`invalid_value`), as unknown config keys are: a typo
  such as `param` must not run a command with empty parameters.
- Multi-part commands (`part`) reach only handlers registered with `max_assembled`; the
  router collects the parts (`gateway.command_parts`), checks the whole's `sha256`, then
  treats the whole exactly as a one-piece command (signature, fields, duplicates) and acks
  `accepted` at once. Parts that stop arriving for `part_timeout` end in `rejected:
  incomplete` (not remembered: the sender may try again under the same id). A part of a
  command already handled is a duplicate; only the last part (n = total) is answered, so a
  re-sent N-part command gets one re-sent ack, not N. Other routes refuse parts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.command_parts import Collector, read_part
from gateway.command_rules import (
    NAME,
    CommandRejected,
    Signatures,
    check_fields,
    leading_id,
    read_id,
    read_object,
)
from gateway.command_store import CommandStore

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from pathlib import Path

__all__ = ["Command", "CommandRejected", "CommandRouter", "Handler", "ping_handler"]

log = logging.getLogger(__name__)

MAX_RUNNING = 32
PART_TIMEOUT = 60.0
_BAD_NAME_LOG_EVERY = 60.0


async def _accept_nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Command:
    """One validated command, as a handler sees it."""

    name: str
    id: str
    action: str | None
    params: dict[str, Any]
    raw: dict[str, Any]
    _accept: Callable[[], Awaitable[None]] = field(
        default=_accept_nothing, repr=False, compare=False
    )

    async def accept(self) -> None:
        """Send the `accepted` ack now (once; later calls do nothing): for long work."""
        await self._accept()


Handler = Callable[[Command], Awaitable[dict[str, Any] | None]]


@dataclass(slots=True)
class _Route:
    handler: Handler
    actions: frozenset[str] | None
    max_assembled: int = 0  # characters of reassembled params; 0 = refuses parts


@dataclass(slots=True)
class _Running:
    task: asyncio.Task[None] | None = None
    accepted: bool = False


def _rejected(cmd_id: str | None, reason: str, detail: str) -> dict[str, Any]:
    return {"cmd_id": cmd_id, "outcome": "rejected", "reason": reason, "detail": detail}


class CommandRouter:
    """Routes commands to registered handlers and answers each with its acks."""

    def __init__(
        self,
        *,
        send_ack: Callable[[str, dict[str, Any]], Awaitable[None]],
        store_path: Path,
        max_size: int,
        remember: float,
        public_keys: Sequence[str],
        require_signature: bool,
        max_running: int = MAX_RUNNING,
        part_timeout: float = PART_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._send_ack = send_ack
        self._store = CommandStore(store_path, remember, clock=clock)
        self._max_size = max_size
        self._signatures = Signatures(public_keys, required=require_signature)
        self._max_running = max_running
        self._routes: dict[str, _Route] = {}
        self._running: dict[tuple[str, str], _Running] = {}
        self._parts = Collector(part_timeout, self._incomplete)
        self._open = False
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._bad_name_logged_at = -_BAD_NAME_LOG_EVERY
        self._bad_names_unlogged = 0

    def register(
        self,
        name: str,
        handler: Handler,
        *,
        actions: Collection[str] | None = None,
        max_assembled: int = 0,
    ) -> None:
        """Route command `name` to `handler`; with `actions`, an `action` is required.

        `max_assembled` > 0 lets the command arrive in parts whose params' JSON text adds
        up to at most that many characters; the handler sees the reassembled command.
        """
        if not NAME.fullmatch(name):
            raise ValueError(f"command name {name!r} must be 1-32 of [A-Za-z0-9_-]")
        if name in self._routes:
            raise ValueError(f"command {name!r} is already registered")
        acts = None if actions is None else frozenset(actions)
        self._routes[name] = _Route(handler, acts, max_assembled)

    async def open(self) -> None:
        """Open the persistent de-duplication store."""
        self._store.open()
        self._open = True

    async def close(self) -> None:
        """Cancel and await running handlers (their commands are not remembered), then close."""
        self._open = False
        tasks = [r.task for r in self._running.values() if r.task is not None]
        tasks += self._parts.cancel_all()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._store.close()

    def stats(self) -> dict[str, Any]:
        """Counters for status and metrics."""
        return {
            "received": self._counts["received"],
            "accepted": self._counts["accepted"],
            "done": self._counts["done"],
            "rejected": dict(sorted(self._rejected.items())),
            "duplicates": self._counts["duplicates"],
            "running": len(self._running),
            "ignored_names": self._counts["ignored_names"],
            "ack_failures": self._counts["ack_failures"],
        }

    async def dispatch(self, name: str, payload: bytes) -> None:
        """Handle one message from `cmd/<name>`; never raises (except CancelledError)."""
        self._counts["received"] += 1
        if not self._open:
            log.warning("Command %r dropped: the command router is closed", name)
            return
        if not NAME.fullmatch(name):
            self._ignore_name(name)
            return
        cmd_id: str | None = None
        try:
            raw = read_object(payload, self._max_size)
            cmd_id = read_id(raw)
            await self._dispatch(name, cmd_id, raw)
        except CommandRejected as exc:
            if exc.reason == "too_large":
                cmd_id = leading_id(payload)
            await self._reject(name, cmd_id, exc.reason, exc.detail)
        except Exception:
            log.exception("Command router failed on command %s %r", name, cmd_id)

    async def _dispatch(self, name: str, cmd_id: str, raw: dict[str, Any]) -> None:
        route = self._routes.get(name)
        if route is None:
            known = ", ".join(sorted(self._routes)) or "none"
            detail = f"This gateway has no command {name!r}; it knows: {known}."
            raise CommandRejected("unknown_command", detail)
        if "part" in raw and route.max_assembled:
            await self._part(name, cmd_id, raw, route)
            return
        await self._whole(name, cmd_id, raw, route)

    async def _whole(
        self, name: str, cmd_id: str, raw: dict[str, Any], route: _Route, *, parts: bool = False
    ) -> None:
        # The signature before the duplicate check: an unsigned re-send must not obtain a
        # stored result when signatures are required.
        self._signatures.check(raw)
        if await self._answer_duplicate(name, cmd_id):
            return
        check_fields(name, raw, route.actions)
        if len(self._running) >= self._max_running:
            detail = f"{len(self._running)} commands are running already; retry later."
            raise CommandRejected("busy", detail)
        running = _Running(accepted=parts)
        self._running[(name, cmd_id)] = running
        if parts:
            # contract.md: a multi-part command is acked `accepted` once all parts arrived
            # and verified; sent before the handler starts so that it comes first.
            self._counts["accepted"] += 1
            await self._send(name, {"cmd_id": cmd_id, "outcome": "accepted"})
            if not self._open:  # closed while the ack was queued: start nothing
                del self._running[(name, cmd_id)]
                return
        self._start(name, cmd_id, raw, route, running)

    async def _part(self, name: str, cmd_id: str, raw: dict[str, Any], route: _Route) -> None:
        key = (name, cmd_id)
        part = read_part(cmd_id, raw)
        if key not in self._parts and (key in self._running or self._store.get(*key)):
            if part.n == part.total:
                await self._answer_duplicate(name, cmd_id)
            else:
                self._counts["duplicates"] += 1
            return
        whole = self._parts.add(key, part, route.max_assembled)
        if whole is not None:
            await self._whole(name, cmd_id, whole, route, parts=True)

    async def _incomplete(self, key: tuple[str, str], detail: str) -> None:
        await self._reject(key[0], key[1], "incomplete", detail)

    async def _answer_duplicate(self, name: str, cmd_id: str) -> bool:
        if (name, cmd_id) in self._running:
            body: dict[str, Any] | None = {"cmd_id": cmd_id, "outcome": "accepted"}
        else:
            body = self._store.get(name, cmd_id)
        if body is None:
            return False
        self._counts["duplicates"] += 1
        log.info("Command %s %r is a duplicate; re-sent its %s ack", name, cmd_id, body["outcome"])
        await self._send(name, {**body, "duplicate": True})
        return True

    def _start(
        self, name: str, cmd_id: str, raw: dict[str, Any], route: _Route, running: _Running
    ) -> None:
        async def accept() -> None:
            if running.accepted:
                return
            running.accepted = True
            self._counts["accepted"] += 1
            await self._send(name, {"cmd_id": cmd_id, "outcome": "accepted"})

        command = Command(name, cmd_id, raw.get("action"), raw.get("params", {}), raw, accept)
        running.task = asyncio.create_task(
            self._run(command, route.handler), name=f"cmd:{name}:{cmd_id}"
        )

    async def _run(self, command: Command, handler: Handler) -> None:
        try:
            body = await self._outcome(command, handler)
        finally:
            del self._running[(command.name, command.id)]
        # No await before `report` remembers it: a re-send cannot slip in and run it again.
        await self.report(command.name, body)

    @staticmethod
    async def _outcome(command: Command, handler: Handler) -> dict[str, Any]:
        """The final ack body of one handler run (CancelledError propagates: no ack)."""
        try:
            result = await handler(command)
        except CommandRejected as exc:
            return _rejected(command.id, exc.reason, exc.detail)
        except Exception as exc:
            log.exception("Command %s %r failed", command.name, command.id)
            detail = f"The handler failed ({type(exc).__name__}); the gateway log has details."
            return _rejected(command.id, "internal_error", detail)
        if result is not None and not isinstance(result, dict):
            log.error("Command %s handler returned %s, not a dict", command.name, type(result))
            detail = "The handler returned an unusable result; the gateway log has details."
            return _rejected(command.id, "internal_error", detail)
        return {"cmd_id": command.id, "outcome": "done", "result": result or {}}

    async def report(self, name: str, body: dict[str, Any]) -> None:
        """Remember, count and send a command's final ack — also of one that ended outside
        its handler (a restart cut it off), so a re-send gets it again, not a new run."""
        cmd_id = body.get("cmd_id")
        if isinstance(cmd_id, str):
            self._remember(name, cmd_id, body)
        if body.get("outcome") == "done":
            self._counts["done"] += 1
        else:
            reason, detail = body.get("reason", "?"), body.get("detail", "")
            self._count_rejection(name, cmd_id if isinstance(cmd_id, str) else None, reason, detail)
        await self._send(name, body)

    def _remember(self, name: str, cmd_id: str, body: dict[str, Any]) -> None:
        try:
            self._store.put(name, cmd_id, body)
        except Exception:
            # The ack still goes out; only de-duplication of a later re-send is lost.
            log.exception("Could not remember the ack of command %s %r", name, cmd_id)

    def _count_rejection(self, name: str, cmd_id: str | None, reason: str, detail: str) -> None:
        self._rejected[reason] += 1
        level = logging.WARNING if reason.endswith("_signature") else logging.INFO
        log.log(level, "Command %s %r rejected: %s (%s)", name, cmd_id, reason, detail)

    async def _reject(self, name: str, cmd_id: str | None, reason: str, detail: str) -> None:
        self._count_rejection(name, cmd_id, reason, detail)
        await self._send(name, _rejected(cmd_id, reason, detail))

    async def _send(self, name: str, body: dict[str, Any]) -> None:
        try:
            await self._send_ack(f"cmd/{name}/ack", body)
        except Exception:
            self._counts["ack_failures"] += 1
            log.exception("Could not queue the %s ack of command %s", body["outcome"], name)

    def _ignore_name(self, name: str) -> None:
        # No ack topic for such a name (it would become an arbitrary topic level): count it,
        # log the first, then at most one line a minute with the number skipped meanwhile.
        self._counts["ignored_names"] += 1
        now = time.monotonic()
        if now - self._bad_name_logged_at < _BAD_NAME_LOG_EVERY:
            self._bad_names_unlogged += 1
            return
        log.warning(
            "Ignored a command with an unusable name %r (and %d more since the last such line)",
            name[:64],
            self._bad_names_unlogged,
        )
        self._bad_name_logged_at = now
        self._bad_names_unlogged = 0


def ping_handler(summary: Callable[[], dict[str, Any]]) -> Handler:
    """The built-in `ping`: answers `done` with the gateway's health summary."""

    async def ping(_command: Command) -> dict[str, Any]:
        return dict(summary())

    return ping
