"""What makes a command acceptable: its JSON shape, its fields, its Ed25519 signature.

IO-free checks used by `gateway.commands.CommandRouter`; each refusal is a
`CommandRejected(reason, detail)` whose reason is a stable code of the ack contract
(design.md "Commands and acks", contract.md "Commands and acks").
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

if TYPE_CHECKING:
    from collections.abc import Sequence

ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Names become topic levels (`cmd/<name>/ack`): only tame ones get an ack topic.
NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
# For an oversize payload: read the id only when it is the first key (cheap, no full parse).
_LEADING_ID = re.compile(rb'\A\s*\{\s*"id"\s*:\s*"([A-Za-z0-9._:-]{1,64})"')
FIELDS = ("id", "action", "params", "sig")


class CommandRejected(Exception):  # noqa: N818 - the name is the daemon's API (brief H3)
    """Raised by a handler to answer `rejected` with a stable reason and a readable detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def leading_id(payload: bytes) -> str | None:
    """The command id of a payload too large to parse, when it is the first key."""
    match = _LEADING_ID.match(payload[:256])
    return match.group(1).decode() if match else None


def read_object(payload: bytes, max_size: int) -> dict[str, Any]:
    """The command's JSON object; refuses oversize, malformed and non-object payloads."""
    if len(payload) > max_size:
        raise CommandRejected(
            "too_large",
            f"The command is {len(payload)} bytes; this gateway accepts at most "
            f"{max_size} bytes (commands.max_size).",
        )
    try:
        raw = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, depth
        raise CommandRejected("malformed_json", f"The payload is not JSON: {exc}.") from None
    if not isinstance(raw, dict):
        detail = f"The command must be a JSON object, not {type(raw).__name__}."
        raise CommandRejected("not_an_object", detail)
    return raw


def read_id(raw: dict[str, Any]) -> str:
    """The command's `id`, checked against the contract's alphabet and length."""
    if "id" not in raw:
        detail = "The command has no 'id'; every command needs a unique id."
        raise CommandRejected("missing_field", detail)
    cmd_id = raw["id"]
    if not isinstance(cmd_id, str) or not ID.fullmatch(cmd_id):
        detail = f"'id' must be 1-64 characters of A-Z a-z 0-9 . _ : -, got {cmd_id!r:.80}."
        raise CommandRejected("invalid_value", detail)
    return cmd_id


def check_fields(name: str, raw: dict[str, Any], actions: frozenset[str] | None) -> None:
    """Refuse unknown fields, parts, a non-object `params` and a missing or unknown action."""
    if "part" in raw:
        raise CommandRejected(
            "invalid_value", f"Command {name!r} does not take multi-part payloads."
        )
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise CommandRejected(
            "invalid_value",
            f"Unknown field(s) {', '.join(map(repr, unknown))}; a command has {', '.join(FIELDS)}.",
        )
    if not isinstance(raw.get("params", {}), dict):
        raise CommandRejected("invalid_value", "'params' must be a JSON object.")
    action = raw.get("action")
    if actions is None:
        if action is not None:
            raise CommandRejected("unknown_action", f"Command {name!r} takes no 'action'.")
        return
    choices = ", ".join(sorted(actions))
    if action is None:
        detail = f"Command {name!r} needs an 'action': one of {choices}."
        raise CommandRejected("missing_field", detail)
    if action not in actions:
        detail = f"{action!r:.40} is not an action of {name!r}; use one of {choices}."
        raise CommandRejected("unknown_action", detail)


def canonical(command: dict[str, Any]) -> bytes:
    """The signed bytes of a command: its JSON without `sig` (RFC 8785 for our payloads)."""
    body = {k: v for k, v in command.items() if k != "sig"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Signatures:
    """Ed25519 verification of `sig` against the configured keys (contract.md, signatures)."""

    __slots__ = ("_keys", "required")

    def __init__(self, public_keys: Sequence[str], *, required: bool) -> None:
        self.required = required
        self._keys: list[Ed25519PublicKey] = []
        for index, text in enumerate(public_keys):
            try:
                raw = base64.b64decode(text, validate=True)
                self._keys.append(Ed25519PublicKey.from_public_bytes(raw))
            except (binascii.Error, ValueError) as exc:
                raise ValueError(
                    f"commands.public_keys[{index}] is not a base64 raw 32-byte Ed25519 key"
                ) from exc

    def check(self, raw: dict[str, Any]) -> None:
        """Refuse a missing (when required) or wrong signature; a wrong one always."""
        sig = raw.get("sig")
        if sig is None:
            if self.required:
                detail = "This gateway only accepts signed commands ('sig')."
                raise CommandRejected("missing_signature", detail)
            return
        if not isinstance(sig, str):
            raise CommandRejected("bad_signature", "'sig' must be a base64 string.")
        try:
            signature = base64.b64decode(sig, validate=True)
        except binascii.Error:
            raise CommandRejected("bad_signature", "'sig' is not valid base64.") from None
        if not self._keys:
            detail = "The command is signed but no commands.public_keys are set to check it."
            raise CommandRejected("bad_signature", detail)
        message = canonical(raw)
        for key in self._keys:
            try:
                key.verify(signature, message)
            except InvalidSignature:
                continue
            return
        raise CommandRejected(
            "bad_signature",
            f"The signature matches none of the {len(self._keys)} configured public keys; "
            "was the command changed after signing, or signed with another key?",
        )
