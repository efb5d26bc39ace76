"""Section models for the daemon itself: gateway, mqtt, outbox, logging, status.

Durations are floats of seconds and sizes ints of bytes (`gateway.config.types`); every
field carries a description, which becomes JSON Schema text for editors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gateway.config.fields import As, ConfigPath, ExistingFile, Name, context_value
from gateway.config.secrets import Secret
from gateway.config.types import duration, size

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


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


class ReconnectBackoff(Backoff):
    """How the uplink reconnects to the broker."""

    max: Annotated[float, As(duration("1s", "1h"))] = Field(
        120.0, description="The delay between reconnect attempts never grows beyond this."
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


class TlsConfig(Section):
    """TLS to the broker; `tls: {}` uses the system's certificate authorities."""

    ca_file: ExistingFile | None = Field(None, description="CA certificate(s), PEM.")
    cert_file: ExistingFile | None = Field(None, description="Client certificate, PEM.")
    key_file: ExistingFile | None = Field(None, description="Client private key, PEM.")

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            raise ValueError(f"cert_file and key_file go together: {missing} is missing")
        return self


class MqttConfig(Section):
    """The uplink broker; without this section events are printed to the console."""

    host: str = Field(min_length=1, description="Broker host name or address.")
    port: int = Field(
        1883, ge=1, le=65535, description="Broker port; default 8883 with tls, else 1883."
    )
    version: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version.")
    client_id: str = Field(
        "storegw",
        min_length=1,
        max_length=128,
        description="Default 'storegw-<store>-<gateway id>'.",
    )
    username: str | None = Field(None, description="User name, if the broker wants one.")
    password: Secret | None = Field(None, description="Password (prefer password_file).")
    password_file: ConfigPath | None = Field(None, description="File holding the password.")
    tls: TlsConfig | None = Field(None, description="TLS settings; absent means plain TCP.")
    keepalive: Annotated[float, As(duration("5s", "20m"))] = Field(
        60.0, description="MQTT keep-alive interval."
    )
    connect_timeout: Annotated[float, As(duration("1s", "5m"))] = Field(
        10.0, description="How long one connection attempt may take."
    )
    session_expiry: Annotated[float, As(duration("0s", "30d"))] = Field(
        604_800.0, description="How long the broker keeps our session while we are away (MQTT 5)."
    )
    clean_start: bool = Field(default=False, description="Start a new session on every connect.")
    prefix: str = Field(
        "storegw/{store}/{gateway}",
        validate_default=True,
        description="Topic prefix; {store} and {gateway} are filled in.",
    )
    inflight: int = Field(100, ge=1, le=1000, description="Unacknowledged messages at most.")
    reconnect: ReconnectBackoff = Field(
        default_factory=ReconnectBackoff, description="Delays between reconnect attempts."
    )
    profile: Literal["generic"] = Field("generic", description="Broker profile.")
    format: Literal["storegw"] = Field("storegw", description="Payload format.")
    max_payload: Annotated[int, As(size("1KB", "256MB"))] = Field(
        128_000, description="Largest message sent in one piece."
    )

    @model_validator(mode="before")
    @classmethod
    def _computed_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("port") is None:
            data["port"] = 8883 if data.get("tls") is not None else 1883
        if data.get("client_id") is None:
            store = context_value(info, "store") or "store"
            gateway = context_value(info, "gateway") or "gateway"
            data["client_id"] = f"storegw-{store}-{gateway}"
        return data

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str, info: ValidationInfo) -> str:
        names = {"store": context_value(info, "store"), "gateway": context_value(info, "gateway")}
        for name in _PLACEHOLDER.findall(value):
            if name not in names:
                raise ValueError(f"unknown placeholder '{{{name}}}': use {{store}} and {{gateway}}")
        topic = _PLACEHOLDER.sub(lambda m: str(names[m.group(1)] or m.group(1)), value)
        if not topic or topic.startswith("/") or topic.endswith("/"):
            raise ValueError("must not be empty nor start or end with '/'")
        if "+" in topic or "#" in topic:
            raise ValueError("must not contain the MQTT wildcards '+' or '#'")
        return topic


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
