"""Shipped device profiles validate; loading, merging and YAML error reporting."""

from __future__ import annotations

import pytest

from drivers.modbus.coalesce import plan
from drivers.modbus.profiles import (
    ProfileError,
    available_profiles,
    load_profile,
    parse_profile,
)
from drivers.modbus.registers import RegisterSpec, RegisterType

SHIPPED = available_profiles()

HEADER = """\
manufacturer: ACME
model: M1
source: test
baudrate: 9600
parity: E
unit_id: 1
registers:
"""


def test_the_expected_profiles_ship() -> None:
    assert {"eastron_sdm120", "eastron_sdm630", "eastron_sdm72"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_profile_validates_and_plans(name: str) -> None:
    profile = load_profile(name)
    assert profile.registers
    assert any(spec.counter for spec in profile.registers), "an energy counter is expected"
    assert all(spec.unit or "power_factor" in spec.name for spec in profile.registers)
    blocks = plan(profile.registers, max_count=profile.max_registers)
    assert sum(len(b.specs) for b in blocks) == len(profile.registers)
    # Eastron meters refuse odd start addresses and counts (protocols.md §3.1).
    assert all(b.address % 2 == 0 and b.count % 2 == 0 for b in blocks)


@pytest.mark.parametrize(
    ("name", "baudrate", "registers_per_request"),
    [("eastron_sdm120", 2400, None), ("eastron_sdm630", 9600, 80)],
)
def test_eastron_defaults_from_the_reference(
    name: str, baudrate: int, registers_per_request: int | None
) -> None:
    profile = load_profile(name)
    assert (profile.baudrate, profile.parity, profile.stop_bits, profile.unit_id) == (
        baudrate,
        "N",
        1,
        1,
    )
    assert profile.max_registers == registers_per_request
    assert all(spec.type is RegisterType.INPUT for spec in profile.registers)


def test_sdm630_addresses_match_the_reference_table() -> None:
    by_name = {s.name: s.address for s in load_profile("eastron_sdm630").registers}
    assert by_name["l3_voltage"] == 0x0004
    assert by_name["total_active_power"] == 0x0034
    assert by_name["import_active_energy"] == 0x0048
    assert by_name["neutral_current"] == 0x00E0
    assert by_name["l3_total_active_energy"] == 0x016A


def test_unknown_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match="eastron_sdm630"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="unknown profile"):
        load_profile("../registers")


def test_inline_registers_override_and_extend() -> None:
    base = load_profile("eastron_sdm120")
    override = RegisterSpec.model_validate(
        {
            "name": "voltage",
            "type": "input",
            "address": 0,
            "data_type": "float32",
            "unit": "kV",
            "scale": 0.001,
        }
    )
    extra = RegisterSpec.model_validate(
        {
            "name": "phase_angle",
            "type": "input",
            "address": 0x24,
            "data_type": "float32",
            "unit": "deg",
        }
    )
    merged = base.with_registers([override, extra])
    names = [s.name for s in merged.registers]
    assert names[0] == "voltage"
    assert names[-1] == "phase_angle"
    assert len(names) == len(base.registers) + 1
    assert merged.registers[0].unit == "kV"
    assert base.registers[0].unit == "V"  # the loaded profile is untouched


def test_yaml_text_rules() -> None:
    profile = parse_profile(
        HEADER
        + """\
  - {name: a, type: input, address: 0x0010, data_type: uint16}
  - {name: b, type: holding, register: 40001, data_type: int16, scale: 0.5}
  - {name: c, type: input, address: 012, data_type: uint16, counter: yes}
""",
        "t.yaml",
    )
    a, b, c = profile.registers
    assert a.address == 16
    assert (b.address, b.scale) == (0, 0.5)
    assert c.address == 12  # decimal, never octal
    assert c.counter is True


def test_errors_carry_positions_and_all_are_reported() -> None:
    text = (
        HEADER.replace("parity: E", "parity: X")
        + """\
  - name: a
    type: input
    address: 30001
    data_type: float32
  - name: a
    type: input
    address: 2
    data_type: floatt
unit_id: 2
"""
    )
    with pytest.raises(ProfileError) as info:
        parse_profile(text, "bad.yaml")
    issues = info.value.issues
    assert issues == sorted(issues, key=lambda i: [int(n) for n in i.split(":")[1:3]])
    assert any(i.startswith("bad.yaml:5:9: parity:") for i in issues)
    assert any(i.startswith("bad.yaml:8:5: registers[0]:") and "vendor" in i for i in issues)
    assert any(i.startswith("bad.yaml:15:16: registers[1].data_type:") for i in issues)
    assert any(i.startswith("bad.yaml:16:1: unit_id: duplicate key") for i in issues)


def test_duplicate_register_names_rejected() -> None:
    text = HEADER + (
        "  - {name: a, type: input, address: 0, data_type: uint16}\n"
        "  - {name: a, type: input, address: 1, data_type: uint16}\n"
    )
    with pytest.raises(ProfileError, match="appears twice"):
        parse_profile(text, "t.yaml")


@pytest.mark.parametrize("text", ["", "registers: [\n", "- a\n- b\n"])
def test_broken_yaml_is_a_profile_error(text: str) -> None:
    with pytest.raises(ProfileError, match=r"^t\.yaml:\d+:\d+: "):
        parse_profile(text, "t.yaml")
