"""Valid configs: values, computed defaults, secrets, paths, schema and `storegw drivers` rows."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pydantic
import pytest

from gateway.config import (
    Config,
    ConfigError,
    ConfigIssue,
    Secret,
    config_schema,
    describe_driver,
    load_config,
    parse_config,
    root_model,
)
from gateway.config.loader import read_document
from gateway.config.messages import issues_from
from gateway.plugins import Registry
from tests.gateway.conftest import Meter

FULL = """\
gateway:
  store: shop-12
  id: "0012"
  state_dir: state
  shutdown_timeout: 15s
  queue_size: 0500
  restart_backoff: {initial: 500ms, max: 1m, reset_after: 1h}
mqtt:
  host: ${BROKER}
  version: 3.1.1
  username: gw
  password_file: secrets/mqtt.pass
  tls:
    ca_file: certs/ca.pem
  prefix: shops/{store}/{gateway}
  clean_start: on
  max_payload: 64KiB
outbox:
  max_size: 1GB
  ttl: {business: 30d, telemetry: ~}
devices:
  - &serial
    driver: meter
    baudrate: 19200
    id: m1
    port: /dev/ttyUSB0
    api_key: inline-key
  - <<: *serial
    id: m2
    port: socket://127.0.0.1:5020
    baudrate: 9600
  - {id: s1, driver: scale, host: 10.0.0.5, tare: "0.25"}
catalog:
  currency: CHF
  skus:
    - {sku: 012345, name: on, gtin: 4006381333931, labels: [L1, L2]}
    - {sku: 5349, name: Tea, plu: "0042", unit_weight: "0.5", shelf_capacity: 24}
aggregation:
  window: 15m
  device_windows: {m1: 5m}
commands:
  public_keys: [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=]
  require_signature: yes
logging: {level: debug, format: json, file: log/storegw.log}
status: {socket: run/storegw.sock, metrics_interval: 30s}
"""


def minimal(extra: str = "") -> str:
    return "gateway:\n  store: s1\n  id: gw1\n" + extra


def parse(text: str, registry: Registry, tmp_path: Path, **env: str) -> Config:
    return parse_config(text, "remote", registry, base_dir=tmp_path, env=env)


def test_full_config_values(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt.pass").write_text("s3cret\n", encoding="utf-8")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("PEM", encoding="utf-8")
    config = parse(FULL, registry, tmp_path, BROKER="broker.local")

    assert config.gateway.id == "0012"  # a str field keeps the source text
    assert config.gateway.queue_size == 500  # an int field parses it
    assert config.gateway.state_dir == tmp_path / "state"
    assert config.gateway.restart_backoff.initial == 0.5
    mqtt = config.mqtt
    assert mqtt is not None
    assert mqtt.host == "broker.local"
    assert mqtt.version == "3.1.1"
    assert mqtt.port == 8883  # tls given
    assert mqtt.client_id == "storegw-shop-12-0012"
    assert mqtt.password == Secret("s3cret")
    assert mqtt.password is not None
    assert mqtt.password.get() == "s3cret"  # one trailing newline stripped
    assert mqtt.tls is not None
    assert mqtt.tls.ca_file == tmp_path / "certs" / "ca.pem"
    assert mqtt.prefix == "shops/shop-12/0012"
    assert mqtt.clean_start is True
    assert mqtt.max_payload == 64 * 1024
    assert config.outbox.path == tmp_path / "state" / "outbox.db"
    assert config.outbox.max_size == 1_000_000_000
    assert config.outbox.ttl.business == 30 * 86400
    assert config.outbox.ttl.telemetry is None
    m1, m2, s1 = config.devices
    assert (m1.id, m2.id, s1.id) == ("m1", "m2", "s1")
    assert m1.baudrate == 19200  # type: ignore[attr-defined]
    assert m2.baudrate == 9600  # type: ignore[attr-defined]  # written here wins over merged
    assert m2.port == "socket://127.0.0.1:5020"  # type: ignore[attr-defined]
    assert s1.tare == 0.25  # type: ignore[attr-defined]
    tea = config.catalog.skus[1]
    assert config.catalog.skus[0].sku == "012345"
    assert config.catalog.skus[0].name == "on"
    assert (tea.sku, tea.plu, tea.unit_weight, tea.shelf_capacity) == ("5349", "0042", 0.5, 24)
    assert config.aggregation.window == 900
    assert config.aggregation.device_windows == {"m1": 300}
    assert config.commands.require_signature is True
    assert config.logging.file == tmp_path / "log" / "storegw.log"
    assert config.status.socket == tmp_path / "run" / "storegw.sock"
    # m2 merges m1's keys, its API key included: both are inline.
    assert m2.api_key == Secret("inline-key")  # type: ignore[attr-defined]
    assert config.inline_secrets == ["devices[0].api_key", "devices[1].api_key"]


def test_defaults_without_optional_sections(tmp_path: Path, registry: Registry) -> None:
    config = parse(minimal(), registry, tmp_path)
    assert config.mqtt is None  # no uplink: console output
    assert config.devices == []
    assert config.outbox.path == Path("/var/lib/storegw/outbox.db")
    assert config.aggregation.window == 60
    assert config.outbox.ttl.telemetry == 30 * 86400
    assert config.inline_secrets == []


def test_mqtt_computed_defaults(tmp_path: Path, registry: Registry) -> None:
    config = parse(minimal("mqtt:\n  host: b\n  password: pw\n"), registry, tmp_path)
    assert config.mqtt is not None
    assert config.mqtt.port == 1883
    assert config.mqtt.prefix == "storegw/s1/gw1"
    assert config.mqtt.version == "5"
    assert config.inline_secrets == ["mqtt.password"]


def test_secret_from_variable_is_not_inline(tmp_path: Path, registry: Registry) -> None:
    text = minimal("mqtt:\n  host: b\n  password: ${PW}\n")
    config = parse(text, registry, tmp_path, PW="from-env")
    assert config.mqtt is not None
    assert config.mqtt.password is not None
    assert config.mqtt.password.get() == "from-env"
    assert config.inline_secrets == []


def test_variables_inside_longer_strings(tmp_path: Path, registry: Registry) -> None:
    text = minimal("mqtt:\n  host: ${A}.${B}\n  username: '$${A} ${A}'\n  port: ${P}\n")
    config = parse(text, registry, tmp_path, A="x", B="y", P="2883")
    assert config.mqtt is not None
    assert (config.mqtt.host, config.mqtt.username, config.mqtt.port) == ("x.y", "${A} x", 2883)


def test_secrets_are_masked(tmp_path: Path, registry: Registry) -> None:
    text = minimal("mqtt:\n  host: b\n  password: hunter2\n")
    config = parse(text, registry, tmp_path)
    for shown in (repr(config), str(config), config.model_dump_json(), repr(config.model_dump())):
        assert "hunter2" not in shown
    assert json.loads(config.model_dump_json())["mqtt"]["password"] == "********"
    assert str(Secret("x")) == "********"
    assert repr(Secret("x")) == "Secret('********')"


def test_config_is_frozen(tmp_path: Path, registry: Registry) -> None:
    config = parse(minimal(), registry, tmp_path)
    with pytest.raises(pydantic.ValidationError):
        config.gateway.store = "other"  # type: ignore[misc]


def test_device_secret_file(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "key.txt").write_text("abc\r\n", encoding="utf-8")
    text = minimal("devices:\n  - {id: m1, driver: meter, port: p, api_key_file: key.txt}\n")
    config = parse(text, registry, tmp_path)
    device = config.devices[0]
    assert device.api_key.get() == "abc"  # type: ignore[attr-defined]
    assert config.inline_secrets == []


def test_load_config_reads_relative_to_the_file(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "etc" / "storegw.yaml"
    path.parent.mkdir()
    path.write_text(minimal("logging: {file: storegw.log}\n"), encoding="utf-8")
    config = load_config(path, registry)
    assert config.logging.file == tmp_path / "etc" / "storegw.log"


def test_unreadable_file_is_a_config_error(tmp_path: Path, registry: Registry) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, registry)
    assert [str(i) for i in info.value.issues] == [
        f"{missing}:1:1: cannot read: No such file or directory"
    ]


def test_non_utf8_file_points_at_the_byte(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"gateway:\n  store: gr\xfcn\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, registry)
    assert (info.value.issues[0].line, info.value.issues[0].col) == (2, 12)


def test_issue_text_without_path() -> None:
    assert str(ConfigIssue("f.yaml", 3, 1, "", "bad")) == "f.yaml:3:1: bad"
    assert str(ConfigIssue("f.yaml", 3, 1, "a[0].b", "bad")) == "f.yaml:3:1: a[0].b: bad"


def test_recursive_alias_is_reported(tmp_path: Path, registry: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        parse(minimal("catalog: &c\n  skus: [*c]\n"), registry, tmp_path)
    assert any(
        "refers to the mapping or list that contains it" in str(i) for i in info.value.issues
    )


def test_alias_explosion_is_bounded(tmp_path: Path, registry: Registry) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ConfigError) as info:
        parse("\n".join(lines) + "\n", registry, tmp_path)
    assert "expands to more than" in str(info.value)


def test_schema_includes_every_driver(registry: Registry) -> None:
    schema = config_schema(registry)
    text = json.dumps(schema)
    for key in ("baudrate", "tare", "keepalive", "shelf_capacity", "device_windows"):
        assert key in text
    assert "password_file" in schema["$defs"]["MqttConfig"]["properties"]
    assert schema["$defs"]["MqttConfig"]["properties"]["password"]["anyOf"][0]["writeOnly"]
    assert schema["required"] == ["gateway"]


def test_schema_accepts_a_valid_config(tmp_path: Path, registry: Registry) -> None:
    # What editors see must agree with the loader for an ordinary file.
    import yaml

    data = yaml.safe_load(minimal("devices:\n  - {id: m1, driver: meter, port: p}\n"))
    jsonschema.validate(data, config_schema(registry))
    bad = {**data, "devices": [{"id": "m1", "driver": "meter", "port": "p", "baudrat": "1"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, config_schema(registry))


def test_root_model_without_drivers_still_builds() -> None:
    assert "devices" in root_model(Registry()).model_json_schema()["properties"]


def test_describe_driver() -> None:
    rows = {row[0]: row for row in describe_driver(Meter)}
    assert rows["port"] == ("port", "str", "(required)", "Serial port path or socket:// URL.")
    assert rows["baudrate"][1:3] == ("int", "9600")
    assert rows["parity"][1] == "'N' | 'E' | 'O'"
    assert rows["interval"][1:3] == ("duration", "5.0")
    assert rows["api_key"][1] == "Secret | None"
    assert rows["driver"][2] == "'meter'"
    assert all(row[3] for row in rows.values())


def test_union_tags_are_dropped_from_paths(tmp_path: Path, registry: Registry) -> None:
    # root_model's discriminated union puts the tag ('meter') into pydantic's loc.
    text = minimal("devices:\n  - id: m1\n    driver: meter\n    port: p\n    baudrate: fast\n")
    doc = read_document(text, "x.yaml", {})
    with pytest.raises(pydantic.ValidationError) as info:
        root_model(registry).model_validate(doc.data)
    assert "meter" in info.value.errors()[0]["loc"]
    issues = issues_from(info.value, doc, root_model(registry))
    assert [str(i) for i in issues] == [
        "x.yaml:8:15: devices[0].baudrate: expected a whole number, got 'fast'"
    ]


def test_tab_inside_an_earlier_block_scalar_is_not_blamed(
    tmp_path: Path, registry: Registry
) -> None:
    # A tab after the block scalar's indentation is text; the real error is lines later.
    block = "      name: |\n        first\n        \tsecond\n      zone: z1\n"
    text = minimal("catalog:\n  skus:\n    - sku: a\n" + block) + "x: 1\ny: [\n"
    with pytest.raises(ConfigError) as info:
        parse(text, registry, tmp_path)
    assert "tab" not in str(info.value)
