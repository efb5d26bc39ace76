"""Logging: repeat suppression, journald priorities, JSON lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gateway import logs


@pytest.fixture
def capture(monkeypatch):
    def make(fmt: str = "text", journald: bool = False) -> io.StringIO:
        if journald:
            monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
        else:
            monkeypatch.delenv("JOURNAL_STREAM", raising=False)
        stream = io.StringIO()
        logs.setup("info", fmt, stream=stream)
        return stream

    yield make
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_storegw", False)]:
        root.removeHandler(h)


def test_identical_errors_are_rate_limited(capture) -> None:
    stream = capture()
    log = logs.DeviceLog(logging.getLogger("drivers.x"), {"device": "m1", "driver": "x"})
    for _ in range(1000):
        log.error("Timeout talking to %s", "unit 3")
    log.error("Something else")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "[m1] Timeout talking to unit 3" in lines[0]


def test_suppressed_count_is_reported_when_the_window_ends(capture) -> None:
    stream = capture()
    log = logging.getLogger("gateway.test")
    record_filter = next(
        f for h in logging.getLogger().handlers if getattr(h, "_storegw", False) for f in h.filters
    )
    assert isinstance(record_filter, logs.RepeatFilter)
    record_filter.window = 0.0  # every repeat is "after the window": each one passes
    log.warning("flaky")
    record_filter.window = 3600.0
    log.warning("flaky")
    log.warning("flaky")
    record_filter.window = 0.0
    log.warning("flaky")
    assert "repeated 2 more times" in stream.getvalue().splitlines()[-1]


def test_journald_lines_carry_priority_and_no_timestamp(capture) -> None:
    stream = capture(journald=True)
    logging.getLogger("gateway.test").warning("Uplink down")
    assert stream.getvalue().startswith("<4>WARNING gateway.test: Uplink down")


def test_json_format(capture) -> None:
    stream = capture(fmt="json")
    logs.DeviceLog(logging.getLogger("drivers.x"), {"device": "m1", "driver": "x"}).info(
        "Hello %s", "you"
    )
    obj = json.loads(stream.getvalue())
    assert obj["msg"] == "Hello you" and obj["device"] == "m1" and obj["level"] == "info"
