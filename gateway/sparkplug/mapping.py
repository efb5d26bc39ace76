"""storegw's outbox messages as Sparkplug metrics (group = store, edge node = gateway).

A telemetry window of one device becomes that device's metrics: `<metric>` is the
window's last value, with `<metric>/min`, `/max`, `/mean` for gauges and `<metric>/delta`
for counters (Double). Every other message (sales, acks, inventory, alerts, metrics, the
birth) is a String metric of the edge node holding the message's JSON, under a fixed set
of names declared in NBIRTH — Sparkplug 3.0 §6.4.18: a birth must carry every metric the
node will ever report.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.sparkplug.proto import DataType, MetricValue

NODE_METRICS = (
    "storegw/status",
    "storegw/events/sales",
    "storegw/cmd/ack",
    "storegw/inventory",
    "storegw/predictions",
    "storegw/alerts",
    "storegw/metrics",
    "storegw/other",
)
_GAUGE_STATS = ("min", "max", "mean")


def node_metric(topic: str, payload: bytes) -> tuple[str, str]:
    """(metric name, String value) for a non-telemetry outbox message."""
    if topic.startswith("cmd/") and topic.endswith("/ack"):
        return "storegw/cmd/ack", payload.decode()
    name = f"storegw/{topic}"
    if name in NODE_METRICS:
        return name, payload.decode()
    wrapped = {"topic": topic, "message": json.loads(payload)}
    return "storegw/other", json.dumps(wrapped, separators=(",", ":"), ensure_ascii=False)


def _ms(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def device_metrics(body: dict[str, Any], *, historical: bool) -> tuple[str, list[MetricValue]]:
    """(device id, metrics) of one telemetry window (`gateway/aggregate.py` shape)."""
    window = body.get("window")
    when = _ms(window.get("end")) if isinstance(window, dict) else _ms(body.get("ts"))
    out: list[MetricValue] = []
    metrics = body.get("metrics")
    for name, stats in (metrics if isinstance(metrics, dict) else {}).items():
        if not isinstance(stats, dict):
            continue
        values = {name: stats.get("last")}
        if "delta" in stats:
            values[f"{name}/delta"] = stats["delta"]
        else:
            values.update({f"{name}/{k}": stats.get(k) for k in _GAUGE_STATS})
        out += [
            MetricValue(key, DataType.DOUBLE, _number(v), when, historical)
            for key, v in values.items()
        ]
    return str(body.get("device", "")), out
