"""`storegw status` as a technician reads it: a header block, then one row per device.

Input is the daemon's status dict (`Daemon.status()`); every field is read with `.get` and
may be missing, so an older or newer daemon still prints. Plain text, no colours, fitted to
the terminal width (long values are cut with an ellipsis, never wrapped mid-column).
"""

from __future__ import annotations

import shutil
import time
from typing import Any

_LABEL = 9  # width of the "uplink   " label column
_SEP = " · "


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def duration(seconds: float) -> str:
    """`45s`, `3m 20s`, `12m`, `3h 12m`, `2d 4h`."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s}s" if m < 10 and s else f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h {m}m"
    d, h = divmod(h, 24)
    return f"{d}d {h}h"


def ago(ts: Any, now: float) -> str:
    """`3m ago` for a wall-clock timestamp; `-` when there is none."""
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return "-"
    delta = now - ts
    return "just now" if delta < 1 else f"{duration(delta)} ago"


def size(n: Any) -> str:
    """Bytes in powers of 1000, as config sizes are (contract.md: KB MB GB)."""
    if not isinstance(n, int | float) or isinstance(n, bool):
        return "-"
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("KB", "MB"):
        n /= 1000
        if abs(n) < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} GB"


def _pack(label: str, parts: list[str], width: int) -> list[str]:
    """`label` then `parts` joined by ' · ', continued on indented lines when too wide."""
    lines: list[str] = []
    current = ""
    parts = [p for p in parts if p]
    if not parts:
        return []
    for part in parts:
        candidate = f"{current}{_SEP}{part}" if current else part
        if current and _LABEL + len(candidate) > width:
            lines.append(current)
            current = part
        else:
            current = candidate
    lines.append(current)
    pad = " " * _LABEL
    return [_cut((label.ljust(_LABEL) if i == 0 else pad) + t, width) for i, t in enumerate(lines)]


def _header(status: dict[str, Any], width: int) -> list[str]:
    gw = _dict(status.get("gateway"))
    head = [
        f"storegw {gw.get('version', '?')}",
        f"store {gw.get('store', '?')}",
        f"gateway {gw.get('id', '?')}",
        f"pid {gw.get('pid', '?')}",
    ]
    uptime = gw.get("uptime_s")
    synced = gw.get("clock_synced")
    clock = "" if synced is None else ("clock synced" if synced else "clock NOT synced")
    run = [
        f"up {duration(uptime)}" if isinstance(uptime, int | float) else "",
        clock,
        f"config {gw['config_file']}" if gw.get("config_file") else "",
    ]
    return [_cut(_SEP.join(head), width), *_pack("", run, width)]


def _uplink(status: dict[str, Any], now: float, width: int) -> list[str]:
    up = status.get("uplink")
    if not isinstance(up, dict):
        return _pack("uplink", ["not configured"], width)
    rtt = up.get("rtt_ms")
    parts = [
        f"{up.get('state', '?')} {up.get('host', '?')}:{up.get('port', '?')}"
        + (f" since {ago(up['since'], now)}" if up.get("since") else ""),
        f"connects {up.get('connects', 0)}",
        f"disconnects {up.get('disconnects', 0)}",
        f"publishes {up.get('publishes', 0)}",
        f"acks {up.get('acks', 0)}",
        f"in flight {up.get('inflight', 0)}",
        f"rtt {rtt:.0f} ms" if isinstance(rtt, int | float) else "rtt -",
    ]
    refused = _dict(up.get("refused"))
    if refused:
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(refused.items()))
        parts.append(f"refused by broker: {counts}")
    if up.get("last_error"):
        parts.append(f"last error {up['last_error']!r}")
    return _pack("uplink", parts, width)


def _outbox(status: dict[str, Any], width: int) -> list[str]:
    box = _dict(status.get("outbox"))
    if not box:
        return []
    oldest = _dict(box.get("oldest_age_s"))
    parts = []
    for cls, depth in _dict(box.get("depth")).items():
        age = oldest.get(cls)
        parts.append(
            f"{cls} {depth}" + (f" (oldest {duration(age)})" if depth and age is not None else "")
        )
    parts.append(size(box.get("bytes")))
    dropped = {k: v for k, v in _dict(box.get("dropped")).items() if v}
    parts.append(
        "dropped " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items()))
        if dropped
        else "nothing dropped"
    )
    return _pack("outbox", parts, width)


def _counters(status: dict[str, Any], width: int) -> list[str]:
    lines: list[str] = []
    pipe = _dict(status.get("pipeline"))
    if pipe:
        queue = f"queue {pipe.get('queue_depth', '?')}/{pipe.get('queue_size', '?')}"
        lines += _pack("pipeline", [queue, f"events {pipe.get('events', 0)}"], width)
    cmds = _dict(status.get("commands"))
    if cmds:
        rejected = _dict(cmds.get("rejected"))
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(rejected.items()))
        parts = [
            f"received {cmds.get('received', 0)}",
            f"done {cmds.get('done', 0)}",
            f"rejected {sum(v for v in rejected.values() if isinstance(v, int))}"
            + (f" ({reasons})" if reasons else ""),
            f"duplicates {cmds.get('duplicates', 0)}",
        ]
        lines += _pack("commands", parts, width)
    return lines


def _devices(status: dict[str, Any], now: float, width: int) -> list[str]:
    devices = [d for d in status.get("devices") or [] if isinstance(d, dict)]
    if not devices:
        return ["no devices configured"]
    head = ("DEVICE", "DRIVER", "STATE", "SINCE", "RESTARTS")
    rows = []
    for dev in devices:
        notes = []
        if dev.get("reason") and dev.get("state") != "ok":
            notes.append(str(dev["reason"]))
        if dev.get("last_error") and dev.get("last_error") != dev.get("reason"):
            notes.append(f"{dev['last_error']} ({ago(dev.get('last_error_at'), now)})")
        cells = (
            str(dev.get("id", "?")),
            str(dev.get("driver", "?")),
            str(dev.get("state", "?")),
            ago(dev.get("since"), now),
            str(dev.get("restarts", 0)),
        )
        rows.append((cells, "; ".join(notes) or "-"))
    widths = [max(len(h), *(len(c[i]) for c, _ in rows)) for i, h in enumerate(head)]
    widths[0] = min(widths[0], 24)  # a very long id must not push the error out of sight

    fixed = sum(widths) + 2 * len(widths)
    # Too narrow for the error beside the row: it goes on its own indented line instead.
    below = width - fixed < 16

    def line(cells: tuple[str, ...], last: str) -> list[str]:
        out = [
            _cut(c, w).rjust(w) if i == 4 else _cut(c, w).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        text = _cut("  ".join(out), width)
        if below:
            return [text] if last in {"-", "LAST ERROR"} else [text, _cut("    " + last, width)]
        return [(text + "  " + _cut(last, width - fixed)).rstrip()]

    lines = line(head, "LAST ERROR")
    for cells, note in rows:
        lines += line(cells, note)
    return lines


def format_status(
    status: dict[str, Any], *, width: int | None = None, now: float | None = None
) -> str:
    """The table a technician reads: header, uplink, outbox, counters, one row per device."""
    width = max(40, width or shutil.get_terminal_size((100, 24)).columns)
    now = time.time() if now is None else now
    lines = [
        *_header(status, width),
        *_uplink(status, now, width),
        *_outbox(status, width),
        *_counters(status, width),
        "",
        *_devices(status, now, width),
    ]
    return "\n".join(lines)
