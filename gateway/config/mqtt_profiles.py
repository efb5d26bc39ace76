"""The per-cloud sub-sections of `mqtt`: `aws`, `azure`, `aliyun`, `sparkplug`.

Each cloud's own keys live in its own sub-section, named after the profile that uses it
(contract.md "Config": `mqtt.profile`, `mqtt.format`); the rules that tie them to the
rest of `mqtt` (TLS, protocol version, limits) are checked in `gateway/config/mqtt.py`.
Facts on each cloud: protocols.md §6.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from gateway.config.fields import As, ConfigPath
from gateway.config.secrets import Secret
from gateway.config.sections import Section
from gateway.config.types import duration

# Azure device ids: "up to 128 characters of ASCII 7-bit alphanumerics plus - . % _ * ? ! (
# ) , : = @ $ '" (IoT Hub identity registry docs).
_AZURE_ID = re.compile(r"[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}")
_ALIYUN_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_SPARKPLUG_FORBIDDEN = re.compile(r"[+/#]")


class AwsConfig(Section):
    """AWS IoT Core: the thing this gateway is (mutual TLS: certificates under `tls`)."""

    thing_name: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9:_-]+$",
        description="The registered thing's name; it is the MQTT client id.",
    )
    alpn: bool | None = Field(
        None,
        description="MQTT on port 443 with ALPN 'x-amzn-mqtt-ca'; default: on when port is 443.",
    )


class AzureConfig(Section):
    """Azure IoT Hub: the device identity and how it authenticates."""

    device_id: str = Field(description="The device id registered in the hub.")
    hub: str | None = Field(
        None, description="Hub host name '<hub>.azure-devices.net'; default: mqtt.host."
    )
    device_key: Secret | None = Field(
        None, description="The device's symmetric key (base64): SAS-token login."
    )
    device_key_file: ConfigPath | None = Field(None, description="File holding device_key.")
    token_ttl: Annotated[float, As(duration("5m", "30d"))] = Field(
        3600.0, description="Lifetime of each SAS token; a fresh one is used before expiry."
    )
    heartbeat: Annotated[float, As(duration("30s", "1d"))] = Field(
        300.0, description="How often an 'online' heartbeat event is sent (presence)."
    )
    api_version: str = Field(
        "2021-04-12", pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$", description="Hub API version."
    )

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        if not _AZURE_ID.fullmatch(value):
            raise ValueError(
                "use 1-128 letters, digits or - . % _ * ? ! ( ) , : = @ $ ' (Azure device ids)"
            )
        return value

    @field_validator("device_key")
    @classmethod
    def _device_key(cls, value: Secret | None) -> Secret | None:
        if value is not None:
            try:
                base64.b64decode(value.get(), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(
                    "not base64: copy the device's primary key from the hub as it is shown"
                ) from None
        return value


class AliyunConfig(Section):
    """Alibaba Cloud IoT Platform: the device triple and the signature parameters."""

    product_key: str = Field(min_length=1, max_length=64, description="The product's key.")
    device_name: str = Field(min_length=1, max_length=64, description="The device's name.")
    device_secret: Secret | None = Field(None, description="The device secret.")
    device_secret_file: ConfigPath | None = Field(None, description="File holding device_secret.")
    client_id: str | None = Field(
        None, description="Client id inside the signed id (≤ 64 chars); default: device_name."
    )
    sign_method: Literal["hmacsha256", "hmacsha1", "hmacmd5"] = Field(
        "hmacsha256", description="Signature algorithm."
    )
    # An int range, not Literal[2, 3]: the loader hands YAML scalars over as text, which
    # pydantic's lax mode turns into an int but never into an int Literal.
    secure_mode: int | None = Field(
        None,
        ge=2,
        le=3,
        description="2 = TLS, 3 = plain TCP (legacy); default: 2 with tls, else 3.",
    )
    timestamp: bool = Field(default=True, description="Sign a millisecond timestamp too.")
    property_post: bool = Field(
        default=False,
        description="Send telemetry as thing-model property posts ('<device>_<metric>').",
    )

    @field_validator("product_key", "device_name", "client_id")
    @classmethod
    def _ids(cls, value: str | None) -> str | None:
        if value is not None and not _ALIYUN_ID.fullmatch(value):
            raise ValueError("use 1-64 letters, digits or _ . : @ -")
        return value


class SparkplugConfig(Section):
    """Sparkplug B 3.0 names: group = store, edge node = gateway, devices = our devices."""

    group_id: str | None = Field(None, description="Sparkplug group id; default: gateway.store.")
    edge_node_id: str | None = Field(
        None, description="Sparkplug edge node id; default: gateway.id."
    )
    primary_host_id: str | None = Field(
        None, description="Wait for this host application's STATE before sending data."
    )

    @field_validator("group_id", "edge_node_id", "primary_host_id")
    @classmethod
    def _sparkplug_id(cls, value: str | None) -> str | None:
        # Sparkplug 3.0 §4.1.1: ids are UTF-8 strings without '+', '/' or '#'.
        if value is not None and (not value or _SPARKPLUG_FORBIDDEN.search(value)):
            raise ValueError("must not be empty nor contain '+', '/' or '#' (Sparkplug ids)")
        return value
