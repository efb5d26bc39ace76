"""IO-free OpenEPaperLink knowledge: MAC forms, the drawing script, AP messages (protocols.md §5.1).

Everything here was read from the AP firmware's request handlers and WebSocket messages as
summarised in protocols.md §5.1 — not from a live AP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

_HEX12 = re.compile(r"[0-9A-Fa-f]{12}")
_HEX16 = re.compile(r"[0-9A-Fa-f]{16}")
_MAC_IN_TEXT = re.compile(r"([0-9A-Fa-f]{16}|[0-9A-Fa-f]{12})")
# The AP's tag record marks a tag in deep sleep with this `nextcheckin` (protocols.md §5.1).
DEEP_SLEEP = 3216153600


def normalise_mac(text: str) -> str:
    """The AP's 16-digit upper-case form; a 12-digit MAC gets two zero bytes on top."""
    compact = text.replace(":", "").replace("-", "").strip()
    if _HEX16.fullmatch(compact):
        return compact.upper()
    if _HEX12.fullmatch(compact):
        return "0000" + compact.upper()
    raise ValueError(f"{text!r} is not a tag MAC (12 or 16 hex digits)")


@dataclass(frozen=True, slots=True)
class TagRecord:
    """The fields of a tag record that tell whether the tag shows its latest content."""

    mac: str
    pending: int
    updatecount: int
    updatelast: int
    lastseen: int
    nextcheckin: int


@dataclass(frozen=True, slots=True)
class TransferDone:
    """`<MAC> reports xfer complete`: the tag confirmed it received its content."""

    mac: str


@dataclass(frozen=True, slots=True)
class TransferTimeout:
    """`<MAC> xfer timeout`: the transfer failed and the AP dropped the tag's queued content."""

    mac: str


ApEvent = TagRecord | TransferDone | TransferTimeout


def _int(record: Mapping[str, Any], key: str) -> int:
    value = record.get(key, 0)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def tag_record(record: Mapping[str, Any]) -> TagRecord | None:
    """A `TagRecord` from one object of `tags` (`/get_db` or the WebSocket), None if unusable."""
    mac = record.get("mac")
    if not isinstance(mac, str):
        return None
    try:
        mac = normalise_mac(mac)
    except ValueError:
        return None
    return TagRecord(
        mac,
        _int(record, "pending"),
        _int(record, "updatecount"),
        _int(record, "updatelast"),
        _int(record, "lastseen"),
        _int(record, "nextcheckin"),
    )


def parse_message(message: Any) -> list[ApEvent]:
    """The events in one WebSocket JSON object (unknown kinds yield nothing)."""
    if not isinstance(message, dict):
        return []
    events: list[ApEvent] = []
    tags = message.get("tags")
    if isinstance(tags, list):
        events.extend(r for t in tags if isinstance(t, dict) and (r := tag_record(t)))
    # The firmware's strings end in CR LF and vary a little: match on the words (§5.1).
    log_msg = message.get("logMsg")
    if isinstance(log_msg, str) and "xfer complete" in log_msg:
        found = _MAC_IN_TEXT.search(log_msg)
        if found:
            events.append(TransferDone(normalise_mac(found.group(1))))
    err_msg = message.get("errMsg")
    if isinstance(err_msg, str) and "xfer timeout" in err_msg:
        found = _MAC_IN_TEXT.search(err_msg)
        if found:
            events.append(TransferTimeout(normalise_mac(found.group(1))))
    return events


def drawing_script(
    texts: Mapping[str, str], layout: Mapping[str, Any], width: int, height: int
) -> list[dict[str, list[Any]]]:
    """The `/jsonupload` script: a white box, then one `text` per line the label has.

    `layout` maps a line name (`title`, `price`, `promo`, `unit_price`) to
    `{x, y, font, color, align, size?}`; lines without a layout are not drawn.
    """
    script: list[dict[str, list[Any]]] = [{"box": [0, 0, width, height, "white"]}]
    for line, place in layout.items():
        text = texts.get(line)
        if not text:
            continue
        element: list[Any] = [place["x"], place["y"], text, place["font"], place["color"]]
        element.append(place.get("align", 0))
        script.append({"text": element})
    return script
