"""The `mqtt` section: the broker, TLS, and the cloud profile's rules.

`profile` picks a broker's auth, topic and presence rules and `format` the payload
namespace (contract.md "Config"); each profile's keys sit in a sub-section named after it
and its limits are checked here (protocols.md §6), so a technician learns at `storegw
check` that, say, Azure IoT Hub needs TLS — not at the first failed connection.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from gateway.config.fields import As, ConfigPath, ExistingFile, context_value
from gateway.config.mqtt_profiles import (
    AliyunConfig,
    AwsConfig,
    AzureConfig,
    SparkplugConfig,
)
from gateway.config.secrets import Secret
from gateway.config.sections import Backoff, Section
from gateway.config.types import duration, size

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
Profile = Literal["generic", "aws-iot", "azure-iot-hub", "aliyun-iot"]
_SECTION = {"aws-iot": "aws", "azure-iot-hub": "azure", "aliyun-iot": "aliyun"}
# Largest message each cloud takes (protocols.md §6.3-6.5), in our KB (powers of 1000).
_MAX_PAYLOAD = {"aws-iot": 128_000, "azure-iot-hub": 256_000, "aliyun-iot": 256_000}
_AWS_PREFIX_SLASHES = 4  # + "/cmd/<name>/ack" stays within AWS's 7 slashes per topic


class ReconnectBackoff(Backoff):
    """How the uplink reconnects to the broker."""

    max: Annotated[float, As(duration("1s", "1h"))] = Field(
        120.0, description="The delay between reconnect attempts never grows beyond this."
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
    profile: Profile = Field(
        "generic", description="Broker profile: its auth, topic and presence rules."
    )
    format: Literal["storegw", "sparkplug"] = Field(
        "storegw", description="Payload namespace: storegw JSON topics or Sparkplug B 3.0."
    )
    port: int = Field(
        1883, ge=1, le=65535, description="Broker port; default 8883 with tls, else 1883."
    )
    version: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT protocol version; default 3.1.1 for Azure and Aliyun, else 5."
    )
    client_id: str = Field(
        "storegw",
        min_length=1,
        max_length=128,
        description="Default 'storegw-<store>-<gateway id>' (computed by cloud profiles).",
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
    clean_start: bool = Field(
        default=False, description="Start a new session on every connect (Sparkplug: always)."
    )
    prefix: str = Field(
        "storegw/{store}/{gateway}",
        validate_default=True,
        description="Topic prefix; {store} and {gateway} are filled in.",
    )
    inflight: int = Field(100, ge=1, le=1000, description="Unacknowledged messages at most.")
    reconnect: ReconnectBackoff = Field(
        default_factory=ReconnectBackoff, description="Delays between reconnect attempts."
    )
    max_payload: Annotated[int, As(size("1KB", "256MB"))] = Field(
        128_000, description="Largest message sent in one piece."
    )
    aws: AwsConfig | None = Field(None, description="AWS IoT Core keys (profile aws-iot).")
    azure: AzureConfig | None = Field(None, description="Azure IoT Hub keys (azure-iot-hub).")
    aliyun: AliyunConfig | None = Field(None, description="Alibaba Cloud IoT keys (aliyun-iot).")
    sparkplug: SparkplugConfig | None = Field(
        None, description="Sparkplug B names (format: sparkplug)."
    )

    @model_validator(mode="before")
    @classmethod
    def _computed_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        profile = data.get("profile")
        if data.get("port") is None:
            data["port"] = 8883 if data.get("tls") is not None else 1883
        if data.get("version") is None and profile in ("azure-iot-hub", "aliyun-iot"):
            data["version"] = (
                "3.1.1"  # Azure: 3.1.1 (MQTT 5 is a preview); Aliyun: 5 on Enterprise only
            )
        if data.get("clean_start") is None and data.get("format") == "sparkplug":
            data["clean_start"] = True  # Sparkplug 3.0 §5.4 (edge node session establishment)
        aws = data.get("aws")
        if data.get("client_id") is None and profile == "aws-iot" and isinstance(aws, dict):
            data["client_id"] = aws.get("thing_name")  # AWS: client id = thing name
        if data.get("client_id") is None and profile not in ("azure-iot-hub", "aliyun-iot"):
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
        if info.data.get("profile") == "aws-iot" and topic.count("/") > _AWS_PREFIX_SLASHES:
            raise ValueError(
                f"at most {_AWS_PREFIX_SLASHES} '/' with profile aws-iot: AWS IoT allows 7 per "
                "topic, and '/cmd/<name>/ack' adds 3"
            )
        return topic

    @field_validator("version")
    @classmethod
    def _version(cls, value: str, info: ValidationInfo) -> str:
        if value == "5" and info.data.get("profile") == "azure-iot-hub":
            raise ValueError("Azure IoT Hub speaks MQTT 3.1.1 (its MQTT 5 is a preview)")
        return value

    @field_validator("keepalive")
    @classmethod
    def _keepalive(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("profile") == "aliyun-iot" and not 30 <= value <= 1200:
            raise ValueError("Alibaba Cloud IoT takes a keep-alive of 30s to 20m only")
        if info.data.get("profile") == "aws-iot" and not 30 <= value <= 1200:
            raise ValueError("AWS IoT Core takes a keep-alive of 30s to 20m only")
        return value

    @field_validator("max_payload")
    @classmethod
    def _max_payload(cls, value: int, info: ValidationInfo) -> int:
        limit = _MAX_PAYLOAD.get(str(info.data.get("profile")))
        if limit is not None and value > limit:
            raise ValueError(f"{info.data['profile']} takes messages up to {limit // 1000}KB")
        return value

    @model_validator(mode="after")
    def _profile_rules(self) -> Self:
        problems = [*self._section_problems(), *self._auth_problems(), *self._format_problems()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _section_problems(self) -> list[str]:
        out = []
        for profile, key in _SECTION.items():
            given = getattr(self, key) is not None
            if given and self.profile != profile:
                out.append(f"'{key}' is used only with profile: {profile}")
            elif not given and self.profile == profile:
                out.append(f"profile {profile} needs the '{key}' section (missing key '{key}')")
        if self.sparkplug is not None and self.format != "sparkplug":
            out.append("'sparkplug' is used only with format: sparkplug")
        return out

    def _auth_problems(self) -> list[str]:
        out = []
        cert = self.tls is not None and self.tls.cert_file is not None
        if self.profile == "aws-iot":
            if not cert:
                out.append("profile aws-iot needs a client certificate: tls.cert_file and key_file")
            if self.aws is not None and self.client_id != self.aws.thing_name:
                out.append("with profile aws-iot the client id is aws.thing_name: remove client_id")
        if self.profile in ("azure-iot-hub", "aliyun-iot"):
            given = [k for k in ("client_id", "username", "password") if k in self.model_fields_set]
            if given:
                out.append(f"profile {self.profile} computes {', '.join(given)}: remove them")
        if self.profile == "azure-iot-hub":
            if self.tls is None:
                out.append("profile azure-iot-hub needs tls (the hub takes TLS only)")
            key = self.azure is not None and self.azure.device_key is not None
            if self.azure is not None and key == cert:
                out.append(
                    "give azure.device_key_file (SAS token) or tls.cert_file (X.509), one of them"
                )
        if self.profile == "aliyun-iot" and self.aliyun is not None:
            if self.aliyun.device_secret is None:
                out.append("missing key 'aliyun.device_secret' (or aliyun.device_secret_file)")
            mode = self.aliyun.secure_mode
            if mode == 2 and self.tls is None:
                out.append("aliyun.secure_mode 2 means TLS: add tls")
            if mode == 3 and self.tls is not None:
                out.append("aliyun.secure_mode 3 means plain TCP: remove tls or use 2")
        return out

    def _format_problems(self) -> list[str]:
        if self.format != "sparkplug":
            return []
        out = []
        if self.profile not in ("generic", "aws-iot"):
            # Sparkplug needs free topics and an NDEATH will (protocols.md §6.1).
            out.append(
                f"format sparkplug needs a broker with free topics and wills, not {self.profile}"
            )
        if not self.clean_start:
            out.append("format sparkplug connects with a clean session: remove clean_start: false")
        return out
