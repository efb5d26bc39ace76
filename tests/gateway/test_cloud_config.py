"""The `mqtt` section's cloud profiles: missing and invalid keys named, limits enforced,
and the worked credential examples of protocols.md §6 reproduced byte for byte."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gateway.cloud import build_profile, mqtt_settings
from gateway.clouds.aliyun import AliyunProfile, sign
from gateway.clouds.aws import AwsProfile
from gateway.clouds.azure import AzureProfile, sas_token, username
from gateway.config import ConfigError
from gateway.config.parse import parse_config
from gateway.sparkplug.node import SparkplugNode

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.config import Config
    from gateway.plugins import Registry

KEY = "bm90LWEtcmVhbC1kZXZpY2Uta2V5LTMyLWJ5dGVzISE="


def test_azure_sas_token_worked_example() -> None:
    token = sas_token("mystore-hub.azure-devices.net/devices/gw-001", KEY, 1_700_003_600)
    assert token == (
        "SharedAccessSignature sr=mystore-hub.azure-devices.net%2Fdevices%2Fgw-001"
        "&sig=qfOg0ga3UeB9KwaGYF1WxyPxfLLtrUtTs8tcCLFswg8%3D&se=1700003600"
    )
    assert username("mystore-hub.azure-devices.net", "gw-001") == (
        "mystore-hub.azure-devices.net/gw-001/?api-version=2021-04-12"
    )


def test_aliyun_signature_worked_example() -> None:
    assert sign(
        "a1B2c3D4e5F",
        "shelf-gw-01",
        "0123456789abcdef0123456789abcdef",
        client_id="shelf-gw-01",
        timestamp="1700000000000",
    ) == (
        "shelf-gw-01|securemode=2,signmethod=hmacsha256,timestamp=1700000000000|",
        "shelf-gw-01&a1B2c3D4e5F",
        "37238381699564b6f84a033b53bcbd5e3866eb681a0f59549c00688d9fac77f0",
    )
    cid, _, password = sign("pk", "dn", "s", client_id="c", timestamp=None, secure_mode=3)
    assert cid == "c|securemode=3,signmethod=hmacsha256|"
    assert len(password) == 64


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("-----BEGIN X-----\n")
    (tmp_path / "azure.key").write_text(KEY + "\n")
    (tmp_path / "aliyun.secret").write_text("0123456789abcdef\n")
    return tmp_path


def _load(text: str, registry: Registry, base: Path) -> Config:
    head = "gateway: {store: shop-1, id: gw-1}\n"
    return parse_config(head + text, "c.yaml", registry, base_dir=base, env={})


def _errors(text: str, registry: Registry, base: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _load(text, registry, base)
    return [str(i) for i in info.value.issues]


AWS = """mqtt:
  host: abc-ats.iot.eu-west-1.amazonaws.com
  profile: aws-iot
  tls: {ca_file: ca.pem, cert_file: cert.pem, key_file: key.pem}
  aws: {thing_name: shop-1-gw-1}
"""
AZURE = """mqtt:
  host: mystore-hub.azure-devices.net
  profile: azure-iot-hub
  tls: {}
  azure: {device_id: gw-001, device_key_file: azure.key}
"""
ALIYUN = """mqtt:
  host: a1B2c3D4e5F.iot-as-mqtt.cn-shanghai.aliyuncs.com
  port: 1883
  profile: aliyun-iot
  tls: {}
  aliyun: {product_key: a1B2c3D4e5F, device_name: shelf-gw-01, device_secret_file: aliyun.secret}
"""
SPARKPLUG = """mqtt:
  host: broker.local
  format: sparkplug
  sparkplug: {primary_host_id: scada}
"""


def test_valid_profiles_build_their_uplink_profiles(registry: Registry, files: Path) -> None:
    aws = _load(AWS.replace("abc-ats", "abc-ats") + "  port: 443\n", registry, files)
    assert aws.mqtt is not None and aws.mqtt.client_id == "shop-1-gw-1"
    assert mqtt_settings(aws).alpn == ("x-amzn-mqtt-ca",)
    assert mqtt_settings(aws).port == 443
    assert isinstance(build_profile(aws, mqtt_settings(aws)), AwsProfile)
    azure = _load(AZURE, registry, files)
    assert azure.mqtt is not None and azure.mqtt.version == "3.1.1" and azure.mqtt.port == 8883
    profile = build_profile(azure, mqtt_settings(azure))
    assert isinstance(profile, AzureProfile)
    assert (
        profile.login().username == "mystore-hub.azure-devices.net/gw-001/?api-version=2021-04-12"
    )
    aliyun = _load(ALIYUN, registry, files)
    profile = build_profile(aliyun, mqtt_settings(aliyun))
    assert isinstance(profile, AliyunProfile)
    assert "securemode=2," in profile.login().client_id
    sp = _load(SPARKPLUG, registry, files)
    assert sp.mqtt is not None and sp.mqtt.clean_start is True
    node = build_profile(sp, mqtt_settings(sp))
    assert isinstance(node, SparkplugNode)
    assert (node.group, node.edge, node.primary_host) == ("shop-1", "gw-1", "scada")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "mqtt: {host: h, profile: azure-iot-hub, tls: {}}\n",
            "c.yaml:2:7: mqtt: profile azure-iot-hub needs the 'azure' section (missing key 'azure')",
        ),
        (
            "mqtt: {host: h, profile: azure-iot-hub, tls: {}, azure: {device_key_file: azure.key}}\n",
            "mqtt.azure: missing required key 'device_id'",
        ),
        (
            AZURE.replace("  tls: {}\n", ""),
            "profile azure-iot-hub needs tls (the hub takes TLS only)",
        ),
        (
            AZURE + "  version: '5'\n",
            "c.yaml:7:12: mqtt.version: Azure IoT Hub speaks MQTT 3.1.1",
        ),
        (
            AZURE.replace("device_key_file: azure.key", "device_key: not*base64"),
            "mqtt.azure.device_key: not base64",
        ),
        (
            AZURE.replace(", device_key_file: azure.key", ""),
            "give azure.device_key_file (SAS token) or tls.cert_file (X.509), one of them",
        ),
        (AZURE + "  max_payload: 300KB\n", "azure-iot-hub takes messages up to 256KB"),
        (AZURE + "  username: me\n", "profile azure-iot-hub computes username: remove them"),
        (
            AWS.replace(", cert_file: cert.pem, key_file: key.pem", ""),
            "profile aws-iot needs a client certificate: tls.cert_file and key_file",
        ),
        (AWS + "  prefix: a/b/c/d/e/{store}\n", "at most 4 '/' with profile aws-iot"),
        (AWS + "  client_id: other\n", "the client id is aws.thing_name: remove client_id"),
        (AWS + "  max_payload: 200KB\n", "aws-iot takes messages up to 128KB"),
        (
            AWS.replace("aws: {thing_name: shop-1-gw-1}", "aws: {}"),
            "mqtt.aws: missing required key 'thing_name'",
        ),
        (ALIYUN + "  keepalive: 10s\n", "Alibaba Cloud IoT takes a keep-alive of 30s to 20m only"),
        (
            ALIYUN.replace(", device_secret_file: aliyun.secret", ""),
            "missing key 'aliyun.device_secret' (or aliyun.device_secret_file)",
        ),
        (
            ALIYUN.replace("  tls: {}\n", "").replace("aliyun: {", "aliyun: {secure_mode: 2, "),
            "aliyun.secure_mode 2 means TLS: add tls",
        ),
        (ALIYUN.replace("aliyun: {", "aliyun: {secure_mode: 1, "), "mqtt.aliyun.secure_mode:"),
        (
            ALIYUN.replace("aliyun: {", "aliyun: {secure_mode: 3, "),
            "aliyun.secure_mode 3 means plain TCP",
        ),
        (
            "mqtt: {host: h, aws: {thing_name: x}}\n",
            "'aws' is used only with profile: aws-iot",
        ),
        (
            SPARKPLUG + "  clean_start: false\n",
            "format sparkplug connects with a clean session: remove clean_start: false",
        ),
        (
            AZURE + "  format: sparkplug\n",
            "format sparkplug needs a broker with free topics and wills, not azure-iot-hub",
        ),
        (
            SPARKPLUG.replace("primary_host_id: scada", "group_id: a/b"),
            "mqtt.sparkplug.group_id: must not be empty nor contain '+', '/' or '#'",
        ),
        ("mqtt: {host: h, profile: ibm}\n", "mqtt.profile:"),
    ],
)
def test_profile_errors_name_the_key(
    text: str, expected: str, registry: Registry, files: Path
) -> None:
    errors = _errors(text, registry, files)
    assert any(expected in e for e in errors), errors
