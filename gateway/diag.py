"""Remote diagnostics (issue 11, `P/cmd/diag`): a bounded log ring and a chunked report.

The report holds every device's and service's status, outbox depth and oldest age, uplink
counters, clock synchronisation, disk space and the last log lines. Secrets never leave:
every secret value of the running config is masked in the report's text, whatever logged
it. The report travels on `P/diag` in parts under the 128 KB payload limit (contract.md
"Anything over 120 KB travels in parts": each part its own message, with
`part: {of, n, total}` and the `sha256` of the reassembled text).
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import shutil
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from gateway.config.secrets import MASK, Secret
from gateway.payloads import rfc3339

if TYPE_CHECKING:
    from pathlib import Path

PART_CHARS = 100_000  # per part's `data`: the envelope stays well under 120 KB
LINE_CHARS = 500


class LogRing(logging.Handler):
    """Keeps the last `size` log lines in memory (bounded: a chatty device cannot grow it)."""

    def __init__(self, size: int) -> None:
        super().__init__(logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        """Keep one line: time, level, logger, device, message (no traceback)."""
        try:
            device = getattr(record, "device", None)
            where = f"[{device}] " if device else ""
            text = f"{rfc3339(record.created)} {record.levelname} {record.name}: {where}"
            self.lines.append((text + record.getMessage())[:LINE_CHARS])
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


def secret_values(node: Any) -> set[str]:
    """Every secret value in a config model (to mask wherever it shows up)."""
    if isinstance(node, Secret):
        return {node.get()}
    if isinstance(node, BaseModel):
        return set().union(*(secret_values(getattr(node, f)) for f in type(node).model_fields))
    if isinstance(node, list | tuple):
        return set().union(*(secret_values(v) for v in node))
    if isinstance(node, dict):
        return set().union(*(secret_values(v) for v in node.values()))
    return set()


def report(
    status: dict[str, Any],
    lines: list[str],
    *,
    config: dict[str, Any],
    disk: Path,
    secrets: set[str],
    max_size: int,
) -> str:
    """The report as JSON text, at most `max_size` characters (oldest log lines cut first)."""
    try:
        usage = shutil.disk_usage(disk)
        disk_info: dict[str, Any] = {"path": str(disk), "total": usage.total, "free": usage.free}
    except OSError as exc:
        disk_info = {"path": str(disk), "error": exc.strerror or str(exc)}
    gateway = status.get("gateway", {})
    core = ("uplink", "outbox", "commands", "gateway", "pipeline", "links", "devices")
    body = {
        "generated": rfc3339(time.time()),
        "config": config,
        "clock": {"synced": gateway.get("clock_synced"), "time": rfc3339(time.time())},
        "disk": disk_info,
        "devices": status.get("devices", []),
        "uplink": status.get("uplink"),
        "outbox": status.get("outbox"),
        "commands": status.get("commands"),
        "pipeline": status.get("pipeline"),
        "links": status.get("links"),
        "services": {k: v for k, v in status.items() if k not in core},
        "gateway": gateway,
        "logs": list(lines),
        "logs_omitted": 0,
    }
    while True:
        text = _masked(json.dumps(body, default=str), secrets)
        if len(text) <= max_size or not body["logs"]:
            return text
        cut = max(1, len(body["logs"]) // 4)
        body["logs"] = body["logs"][cut:]
        body["logs_omitted"] += cut


def _masked(text: str, secrets: set[str]) -> str:
    # Secrets are masked as they appear inside JSON strings (escaped as json.dumps does).
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(json.dumps(secret)[1:-1], MASK)
    return text


def parts(report_id: str, text: str) -> list[dict[str, Any]]:
    """The report split into message bodies, each with `part` and the whole's `sha256`."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    chunks = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
    return [
        {
            "report": report_id,
            "part": {"of": report_id, "n": n, "total": len(chunks)},
            "sha256": digest,
            "data": chunk,
        }
        for n, chunk in enumerate(chunks, 1)
    ]
