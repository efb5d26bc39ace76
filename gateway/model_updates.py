"""Which stockout model is live, and `P/cmd/model`: signed installs and rollback (issue 7).

`install` params: `{"model": <base64 ONNX bytes>, "card": <base64 of the card's JSON>}` (the
card travels as base64 so the signed command holds no floats: contract.md, signatures),
signed with Ed25519 over the canonical command (`commands.public_keys`; models always need
a signature, whatever `commands.require_signature` says). Over 120 KB the command comes in
parts (`gateway.command_parts`); the router hands over the reassembled command. The model
is then checked exactly as at start-up (`gateway.model_store.load_model`), written to
`<state_dir>/models/`, and swapped in with one assignment: a round in flight finishes with
the model it started with. `rollback` swaps back to the previous model after checking it
again. Every failure is a `rejected` ack with a reason; the live model stays.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from gateway.command_rules import CommandRejected, Signatures
from gateway.model_card import ModelRefused
from gateway.model_store import INSTALLED, ModelFiles, ModelSource, load_model

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from gateway.commands import Command
    from gateway.model_store import LoadedModel

log = logging.getLogger(__name__)

ACTIONS = ("install", "rollback")
_CARD_MAX = 4_000_000  # a card is ~15 KB; this only bounds memory


def _source_text(source: ModelSource) -> str:
    return source.origin if source.model is None else f"{source.origin} {source.model}"


class ModelManager:
    """The live model, the previous one, and the `model` command's handler."""

    def __init__(
        self,
        directory: Path,
        configured: ModelSource,
        *,
        public_keys: Sequence[str],
        max_size: int,
        horizon_h: float | None,
        on_swap: Callable[[LoadedModel], None],
    ) -> None:
        self.files = ModelFiles(directory)
        self.configured = configured
        self.current: LoadedModel | None = None
        self.previous: ModelSource | None = None
        self.last_refusal: str | None = None
        self.max_size = max_size
        self.horizon_h = horizon_h
        self._keys = Signatures(public_keys, required=True)
        self._on_swap = on_swap
        self._lock = asyncio.Lock()

    @property
    def max_assembled(self) -> int:
        """Characters of a multi-part install's params: base64 model and card, plus slack."""
        return (self.max_size + _CARD_MAX) * 4 // 3 + 1000

    async def _load(self, source: ModelSource) -> LoadedModel:
        def work() -> LoadedModel:
            try:
                data, card = source.read()
            except OSError as exc:
                raise ModelRefused("unreadable", f"Cannot read the model: {exc}.") from None
            return load_model(data, card, source, horizon_h=self.horizon_h)

        return await asyncio.to_thread(work)

    def _refused(self, what: str, exc: ModelRefused) -> None:
        self.last_refusal = f"{what}: {exc.reason}: {exc.detail}"
        log.error("Refused stockout model (%s): %s: %s", what, exc.reason, exc.detail)

    def _swap(self, model: LoadedModel, previous: ModelSource | None) -> None:
        self.current, self.previous = model, previous
        self._on_swap(model)

    async def load_initial(self) -> None:
        """At start-up: the installed model if any, else the configured (or shipped) one."""
        current, previous = await asyncio.to_thread(self.files.active)
        for source in [current, self.configured]:
            if source is None:
                continue
            try:
                model = await self._load(source)
            except ModelRefused as exc:
                self._refused(_source_text(source), exc)
                continue
            self._swap(model, previous if source is current else None)
            log.info("Stockout model %s loaded (%s)", model.card.label, _source_text(source))
            return
        log.error("No usable stockout model: running without predictions")

    async def handle(self, command: Command) -> dict[str, Any]:
        """The `model` command: `install` or `rollback`."""
        async with self._lock:  # one swap at a time
            if command.action == "install":
                return await self._install(command)
            return await self._rollback(command)

    def _decode(self, params: dict[str, Any]) -> tuple[bytes, bytes]:
        if set(params) != {"model", "card"}:
            detail = "'params' must hold exactly 'model' and 'card' (both base64)."
            raise CommandRejected("invalid_value", detail)
        out = []
        for key, limit in (("model", self.max_size), ("card", _CARD_MAX)):
            text = params[key]
            if not isinstance(text, str) or len(text) > (limit * 4 // 3) + 4:
                detail = f"'params.{key}' must be base64 text of at most {limit} bytes."
                raise CommandRejected(
                    "too_large" if isinstance(text, str) else "invalid_value", detail
                )
            try:
                out.append(base64.b64decode(text, validate=True))
            except (binascii.Error, ValueError):
                raise CommandRejected("invalid_value", f"'params.{key}' is not base64.") from None
        return out[0], out[1]

    async def _install(self, command: Command) -> dict[str, Any]:
        self._keys.check(command.raw)
        data, card = self._decode(command.params)
        await command.accept()  # checking and loading takes a moment
        try:
            model = await asyncio.to_thread(
                load_model, data, card, ModelSource(INSTALLED), horizon_h=self.horizon_h
            )
        except ModelRefused as exc:
            self._refused(f"command {command.id!r}", exc)
            raise CommandRejected(exc.reason, exc.detail) from None
        current = self.current
        if current is not None and current.card.sha256 == model.card.sha256:
            return {"installed": current.describe(), "unchanged": True}
        saved = await asyncio.to_thread(self.files.save, data, card, model.card.sha256)
        previous = current.source if current is not None else None
        await asyncio.to_thread(self.files.set_active, saved, previous)
        self._swap(dataclasses.replace(model, source=saved), previous)
        log.info("Stockout model %s installed by command %r", model.card.label, command.id)
        return {
            "installed": self.current.describe() if self.current else {},
            "previous": previous.as_dict() if previous else None,
        }

    async def _rollback(self, command: Command) -> dict[str, Any]:
        previous, current = self.previous, self.current
        if previous is None or current is None:
            detail = "There is no previous model to roll back to; the current one stays."
            raise CommandRejected("no_previous_model", detail)
        try:
            model = await self._load(previous)
        except ModelRefused as exc:
            self._refused(f"rollback {command.id!r}", exc)
            detail = f"The previous model fails its checks ({exc.detail}); the current one stays."
            raise CommandRejected(exc.reason, detail) from None
        await asyncio.to_thread(self.files.set_active, previous, current.source)
        self._swap(model, current.source)
        log.info("Stockout model rolled back to %s by command %r", model.card.label, command.id)
        return {"installed": model.describe(), "previous": current.source.as_dict()}

    def describe(self) -> dict[str, Any]:
        """For status."""
        return {
            "current": self.current.describe() if self.current else None,
            "previous": self.previous.as_dict() if self.previous else None,
            "last_refusal": self.last_refusal,
        }
