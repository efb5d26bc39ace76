"""Section models for the daemon itself: gateway, outbox, logging, status (mqtt: `mqtt.py`).

Durations are floats of seconds and sizes ints of bytes (`gateway.config.types`); every
field carries a description, which becomes JSON Schema text for editors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from gateway.config.fields import As, ConfigPath, Name, context_value
from gateway.config.types import duration, size


class Section(BaseModel):
    """Base of every config model: unknown keys are errors, values are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Backoff(Section):
    """Growing delay between restarts: `initial`, doubling up to `max`."""

    initial: Annotated[float, As(duration("100ms", "1h"))] = Field(
        1.0, description="First delay after a failure."
    )
    max: Annotated[float, As(duration("1s", "1d"))] = Field(
        300.0, description="The delay never grows beyond this."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max < self.initial:
            raise ValueError("'max' must not be shorter than 'initial'")
        return self


class RestartBackoff(Backoff):
    """How a failed device is restarted."""

    reset_after: Annotated[float, As(duration("1s", "1d"))] = Field(
        600.0, description="A device running this long without failing starts over at 'initial'."
    )


class GatewayConfig(Section):
    """Who this gateway is and where it keeps its state."""

    store: Name = Field(description="Store id: 1-64 letters, digits, '_', '.' or '-'.")
    id: Name = Field(description="Gateway id within the store, same characters as 'store'.")
    state_dir: ConfigPath = Field(
        Path("/var/lib/storegw"), description="Directory for the outbox and device state."
    )
    shutdown_timeout: Annotated[float, As(duration("1s", "60s"))] = Field(
        10.0, description="How long a clean shutdown may take before the rest is abandoned."
    )
    queue_size: int = Field(
        10_000, ge=100, le=1_000_000, description="Events the pipeline holds before drivers wait."
    )
    restart_backoff: RestartBackoff = Field(
        default_factory=RestartBackoff, description="Delays between restarts of a failed device."
    )


class OutboxTtl(Section):
    """How long undelivered messages are kept, per delivery class."""

    business: Annotated[float, As(duration("1m"))] | None = Field(
        None, description="Sales, acks, alerts: kept until delivered unless set."
    )
    telemetry: Annotated[float, As(duration("1m"))] | None = Field(
        2_592_000.0, description="Telemetry, inventory, predictions, metrics."
    )


class OutboxConfig(Section):
    """The on-disk queue between the pipeline and the uplink."""

    path: ConfigPath = Field(
        Path("/var/lib/storegw/outbox.db"),
        description="SQLite file; default '<state_dir>/outbox.db'.",
    )
    max_size: Annotated[int, As(size("1MB", "64GB"))] = Field(
        256_000_000, description="When reached, the oldest telemetry is dropped."
    )
    commit_interval: Annotated[float, As(duration("1ms", "1s"))] = Field(
        0.02, description="Group-commit window: longer batches more, delays more."
    )
    min_free_disk: Annotated[int, As(size())] = Field(
        50_000_000, description="Below this much free disk, new messages are refused."
    )
    ttl: OutboxTtl = Field(default_factory=OutboxTtl, description="Expiry per delivery class.")

    @model_validator(mode="before")
    @classmethod
    def _default_path(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and data.get("path") is None:
            state_dir = context_value(info, "state_dir") or Path("/var/lib/storegw")
            data = {**data, "path": Path(state_dir) / "outbox.db"}
        return data


class LoggingConfig(Section):
    """Where log lines go and how much is written."""

    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Threshold.")
    format: Literal["text", "json"] = Field("text", description="One line of text or JSON each.")
    file: ConfigPath | None = Field(None, description="Also write to this file (rotated).")
    file_max_size: Annotated[int, As(size("10KB"))] = Field(
        10_000_000, description="Rotate the log file at this size."
    )
    file_count: int = Field(3, ge=1, le=100, description="Rotated files kept.")


class StatusConfig(Section):
    """The status socket and periodic self-reports."""

    socket: ConfigPath | None = Field(None, description="UNIX socket for `storegw status`.")
    metrics_interval: Annotated[float, As(duration("5s", "1d"))] = Field(
        60.0, description="How often metrics are published."
    )
    heartbeat: Annotated[float, As(duration("5s", "1d"))] = Field(
        300.0, description="How often a heartbeat is published."
    )
