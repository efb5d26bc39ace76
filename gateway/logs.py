"""Logging set-up: human or JSON lines, journald priorities, and repeat suppression.

Under systemd (`JOURNAL_STREAM` set) each line starts with its `<N>` syslog priority and
carries no timestamp (journald adds one). An identical message repeated within a minute
is logged once; when the burst ends, one line says how many were suppressed — a dead
device must never fill the SD card.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from pathlib import Path

_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def _context(record: logging.LogRecord) -> str:
    device = getattr(record, "device", None)
    return f"[{device}] " if device else ""


class TextFormatter(logging.Formatter):
    """`2026-12-02 10:46:29 WARNING gateway.supervisor: [meter-1] Driver failed: ...`."""

    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        """One line (plus a traceback when there is one)."""
        text = f"{record.levelname} {record.name}: {_context(record)}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if self.journald:
            prio = _PRIORITY.get(record.levelno, 6)
            return "\n".join(f"<{prio}>{line}" for line in text.splitlines())
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        return f"{stamp} {text}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record."""
        obj: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("device", "driver"):
            value = getattr(record, key, None)
            if value is not None:
                obj[key] = value
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False)


class RepeatFilter(logging.Filter):
    """Lets the first of identical messages through; counts repeats within `window` s."""

    def __init__(self, window: float = 60.0, max_keys: int = 1024) -> None:
        super().__init__()
        self.window = window
        self.max_keys = max_keys
        self._seen: dict[tuple[str, int, str, str], list[float | int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass or suppress; a passing record notes how many of its kind were suppressed."""
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(getattr(record, "device", "")), record.getMessage())
        now = record.created
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.window:
            entry[1] = int(entry[1]) + 1
            return False
        if entry is not None and entry[1]:
            record.msg = f"{record.msg} (repeated {int(entry[1])} more times in the last minute)"
        if len(self._seen) >= self.max_keys:
            cutoff = now - self.window
            self._seen = {k: v for k, v in self._seen.items() if v[0] >= cutoff}
            if len(self._seen) >= self.max_keys:
                self._seen.clear()
        self._seen[key] = [now, 0]
        return True


def setup(
    level: str = "info",
    fmt: str = "text",
    *,
    file: Path | None = None,
    file_max_size: int = 10_000_000,
    file_count: int = 3,
    stream: TextIO | None = None,
) -> None:
    """Configure the root logger once (idempotent: replaces our previous handlers)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_storegw", False):
            root.removeHandler(handler)
    journald = "JOURNAL_STREAM" in os.environ and fmt == "text"
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    if file is not None:
        handlers.append(
            logging.handlers.RotatingFileHandler(
                file, maxBytes=file_max_size, backupCount=file_count, encoding="utf-8"
            )
        )
    for i, handler in enumerate(handlers):
        if fmt == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(TextFormatter(journald=journald and i == 0))
        handler.addFilter(RepeatFilter())
        handler._storegw = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Third-party chatter that would drown ours at info level.
    for noisy in ("pymodbus", "amqtt", "transitions", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class DeviceLog(logging.LoggerAdapter[logging.Logger]):
    """A logger bound to one device: every record carries `device` and `driver`."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        """Attach the device fields."""
        extra = kwargs.setdefault("extra", {})
        extra.update(self.extra or {})
        return msg, kwargs
