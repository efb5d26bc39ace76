"""Register model, codec and coalescing planner (IO-free)."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.modbus.coalesce import (
    MAX_BITS,
    MAX_REGISTERS,
    ReadBlock,
    extract,
    extract_wire,
    plan,
)
from drivers.modbus.profiles import load_profile
from drivers.modbus.registers import (
    ByteOrder,
    DataType,
    RegisterSpec,
    RegisterType,
    vendor_to_address,
)

NUMERIC_RANGES = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}


def spec(data_type: str = "float32", address: int = 0, **kw: object) -> RegisterSpec:
    fields: dict[str, object] = {
        "name": kw.pop("name", f"v{address}"),
        "type": kw.pop("type", "input"),
        "address": address,
        "data_type": data_type,
    }
    fields.update(kw)
    return RegisterSpec.model_validate(fields)


# --- golden decodes (protocols.md §3.1, Eastron vendor example) -------------------------


def test_sdm_voltage_float32_abcd() -> None:
    # Reply `01 04 04 43 66 33 34 1B 38`: registers 0x4366 0x3334 = 230.2 V.
    voltage = load_profile("eastron_sdm120").registers[0]
    assert voltage.name == "voltage"
    assert voltage.address == 0
    assert voltage.decode([0x4366, 0x3334]) == pytest.approx(230.2, abs=1e-4)


def test_sdm_total_energy_golden() -> None:
    # Reply `01 04 04 44 9A 50 00 …` to a read at 0x0156: 1234.5 kWh.
    regs = {s.name: s for s in load_profile("eastron_sdm630").registers}
    total = regs["total_active_energy"]
    assert (total.address, total.counter, total.unit) == (0x0156, True, "kWh")
    assert total.decode([0x449A, 0x5000]) == 1234.5


@pytest.mark.parametrize(
    ("order", "registers"),
    [
        (ByteOrder.ABCD, [0x4366, 0x3334]),
        (ByteOrder.CDAB, [0x3334, 0x4366]),
        (ByteOrder.BADC, [0x6643, 0x3433]),
        (ByteOrder.DCBA, [0x3433, 0x6643]),
    ],
)
def test_byte_orders_golden(order: ByteOrder, registers: list[int]) -> None:
    s = spec(byte_order=order)
    value = s.decode(registers)
    assert value == pytest.approx(230.2, abs=1e-4)
    # The vendor's example is 0x43663334, one ULP above the float32 nearest 230.2.
    assert isinstance(value, float)
    assert s.encode(value) == registers


def test_int32_cdab_golden() -> None:
    # 0x12345678 with the low word first.
    assert spec("uint32", byte_order="CDAB").decode([0x5678, 0x1234]) == 0x12345678
    assert spec("int16", byte_order="BADC").decode([0xFFFF]) == -1
    assert spec("uint16", byte_order="DCBA").decode([0x3412]) == 0x1234


# --- round trips: every data type x byte order -------------------------------------------


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("data_type", list(NUMERIC_RANGES))
@given(data=st.data())
def test_integer_round_trip(order: ByteOrder, data_type: DataType, data: st.DataObject) -> None:
    low, high = NUMERIC_RANGES[data_type]
    value = data.draw(st.integers(low, high))
    s = spec(data_type, byte_order=order)
    registers = s.encode(value)
    assert len(registers) == s.count
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert s.decode(registers) == value


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("width", [32, 64])
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trip(order: ByteOrder, width: int, value: float) -> None:
    s = spec(f"float{width}", byte_order=order)
    if width == 32:
        try:
            value = struct.unpack(">f", struct.pack(">f", value))[0]
        except OverflowError:
            with pytest.raises(ValueError, match="does not fit"):
                s.encode(value)
            return
    if not math.isfinite(value):
        return  # a finite double that rounds to float32 infinity
    assert s.decode(s.encode(value)) == value


@pytest.mark.parametrize("order", list(ByteOrder))
@given(text=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=11))
def test_string_round_trip(order: ByteOrder, text: str) -> None:
    s = spec("string", length=11, byte_order=order)
    assert s.count == 6
    assert s.decode(s.encode(text)) == text


def test_string_byte_swap_golden() -> None:
    assert spec("string", length=4).decode([0x5344, 0x4D00]) == "SDM"
    assert spec("string", length=4, byte_order="BADC").decode([0x4453, 0x004D]) == "SDM"


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize(("bit", "width"), [(0, 1), (5, 1), (15, 1), (4, 4), (0, 16)])
def test_bits_round_trip(order: ByteOrder, bit: int, width: int) -> None:
    s = spec("bits", bit=bit, width=width, byte_order=order, type="holding")
    for value in (0, 1, (1 << width) - 1):
        decoded = s.decode(s.encode(value))
        assert decoded == (bool(value) if width == 1 else value)


def test_bits_golden() -> None:
    status = [0b0000_0000_1010_0100]
    assert spec("bits", bit=2, type="holding").decode(status) is True
    assert spec("bits", bit=3, type="holding").decode(status) is False
    assert spec("bits", bit=4, width=4, type="holding").decode(status) == 0b1010


def test_coil_bool() -> None:
    coil = spec("bool", type="coil")
    assert coil.decode(coil.encode(value=True)) is True
    assert coil.decode([0]) is False


def test_scale_and_offset() -> None:
    s = spec("int16", scale=0.1, offset=-40, unit="C")
    assert s.decode([215]) == pytest.approx(-18.5)
    assert s.encode(-18.5) == [215]
    assert spec("uint16").decode([7]) == 7  # no scaling: stays an int
    with pytest.raises(ValueError, match="does not fit"):
        spec("uint16", scale=0.01).encode(1000.0)


@pytest.mark.parametrize("registers", [[0x7FC0, 0x0000], [0x7F80, 0], [0xFF80, 0]])
def test_non_finite_float_is_no_value(registers: list[int]) -> None:
    assert spec().decode(registers) is None
    assert spec(byte_order="CDAB").decode(registers[::-1]) is None


def test_decode_rejects_wrong_count_and_range() -> None:
    with pytest.raises(ValueError, match="2 needed"):
        spec().decode([1])
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        spec("uint16").decode([70000])


# --- validation ---------------------------------------------------------------------------


def test_vendor_numbers() -> None:
    assert vendor_to_address(30001, RegisterType.INPUT) == 0
    assert vendor_to_address(30343, RegisterType.INPUT) == 0x0156
    assert vendor_to_address(40001, RegisterType.HOLDING) == 0
    assert vendor_to_address(440001, RegisterType.HOLDING) == 40000
    assert vendor_to_address(10001, RegisterType.DISCRETE) == 0
    assert vendor_to_address(1, RegisterType.COIL) == 0
    with pytest.raises(ValueError, match="not a holding number"):
        vendor_to_address(30001, RegisterType.HOLDING)
    s = RegisterSpec.model_validate(
        {"name": "v", "type": "input", "register": 30343, "data_type": "float32"}
    )
    assert s.address == 0x0156


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"address": 30001}, "looks like a vendor register number"),
        ({"address": 0, "register": 30001}, "not both"),
        ({"address": 0, "data_type": "bool"}, "coils and discrete"),
        ({"address": 0, "type": "coil"}, "coils and discrete"),
        ({"address": 0, "data_type": "string"}, "length"),
        ({"address": 0, "data_type": "bits"}, "bit"),
        ({"address": 0, "data_type": "bits", "bit": 12, "width": 8}, "exceed one register"),
        ({"address": 0, "data_type": "string", "length": 4, "scale": 2}, "apply to numbers"),
        ({"address": 0, "scale": 0}, "non-zero"),
        ({"address": 0, "wrap": 100}, "counter: true"),
        ({"address": 65535}, "past address 65535"),
        ({"address": 0, "bogus": 1}, "Extra inputs"),
        ({"address": 0, "name": "Bad Name"}, "pattern"),
    ],
)
def test_invalid_specs(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"name": "v", "type": "input", "data_type": "float32"}
    with pytest.raises(ValidationError, match=message):
        RegisterSpec.model_validate({**base, **fields})


def test_hex_address_text() -> None:
    s = RegisterSpec.model_validate(
        {"name": "v", "type": "input", "address": "0x0156", "data_type": "float32"}
    )
    assert s.address == 0x0156


def test_protocol_address_in_vendor_range_via_six_digits() -> None:
    # SunSpec devices really use holding address 40000+: the six-digit form reaches it.
    s = RegisterSpec.model_validate(
        {"name": "v", "type": "holding", "register": 440003, "data_type": "uint16"}
    )
    assert s.address == 40002


# --- coalescing planner -------------------------------------------------------------------


def test_sdm630_map_needs_few_requests() -> None:
    profile = load_profile("eastron_sdm630")
    blocks = plan(profile.registers, max_count=profile.max_registers)
    assert [(b.address, b.count) for b in blocks] == [
        (0x0000, 80),
        (0x0054, 4),
        (0x00C8, 6),
        (0x00E0, 2),
        (0x0156, 22),
    ]
    assert sum(len(b.specs) for b in blocks) == len(profile.registers) == 47
    # Eastron: start address and count even (protocols.md §3.1).
    assert all(b.address % 2 == 0 and b.count % 2 == 0 for b in blocks)
    assert all(b.function_code == 4 for b in blocks)
    # A wider gap joins the line-voltage and neutral-current blocks.
    assert len(plan(profile.registers, max_gap=20, max_count=80)) == 4


def test_gap_limit() -> None:
    specs = [spec(address=0), spec(address=10), spec(address=30)]
    assert [(b.address, b.count) for b in plan(specs, max_gap=8)] == [(0, 12), (30, 2)]
    assert [(b.address, b.count) for b in plan(specs, max_gap=18)] == [(0, 32)]
    assert len(plan(specs, max_gap=0)) == 3
    contiguous = [spec(address=a) for a in range(0, 20, 2)]
    assert len(plan(contiguous, max_gap=0)) == 1


def test_count_limits() -> None:
    contiguous = [spec(address=a) for a in range(0, 400, 2)]
    blocks = plan(contiguous)
    assert [b.count for b in blocks] == [124, 124, 124, 28]
    assert all(b.count <= MAX_REGISTERS for b in blocks)
    assert [b.count for b in plan(contiguous, max_count=80)] == [80] * 5
    assert len(plan(contiguous, max_count=500)) == 4  # capped at the protocol's 125
    coils = [spec("bool", address=a, type="coil") for a in range(4500)]
    coil_blocks = plan(coils)
    assert [b.count for b in coil_blocks] == [MAX_BITS, MAX_BITS, 500]
    assert {b.function_code for b in coil_blocks} == {1}


def test_tables_are_planned_apart() -> None:
    specs = [
        spec(address=0, type="input"),
        spec(address=2, type="holding", name="h"),
        spec("bool", address=0, type="discrete", name="d"),
    ]
    blocks = plan(specs)
    assert [(b.type, b.function_code) for b in blocks] == [
        (RegisterType.HOLDING, 3),
        (RegisterType.INPUT, 4),
        (RegisterType.DISCRETE, 2),
    ]


def test_overlapping_specs_share_a_block() -> None:
    status = spec("uint16", address=4, name="status", type="holding")
    flag = spec("bits", address=4, name="flag", bit=3, type="holding")
    (block,) = plan([status, flag])
    assert (block.address, block.count) == (4, 1)
    assert extract(block, [0x0008]) == {"status": 8, "flag": True}


def test_plan_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="exceed"):
        plan([spec("string", length=200)], max_count=80)
    with pytest.raises(ValueError, match="max_gap"):
        plan([spec()], max_gap=-1)
    with pytest.raises(ValueError, match="max_count"):
        plan([spec()], max_count=0)


def test_extract_slices_block() -> None:
    profile = load_profile("eastron_sdm120")
    block = plan(profile.registers)[0]
    registers = [0] * block.count
    registers[0:2] = [0x4366, 0x3334]  # voltage
    registers[0x0C:0x0E] = [0x7FC0, 0x0000]  # active power: NaN
    values = extract(block, registers)
    assert values["voltage"] == pytest.approx(230.2, abs=1e-4)
    assert values["active_power"] is None
    assert values["current"] == 0.0
    with pytest.raises(ValueError, match="short reply"):
        extract(block, registers[:-1])


def test_extract_coils_ignores_padding() -> None:
    coils = [spec("bool", address=a, type="coil", name=f"c{a}") for a in (0, 2)]
    (block,) = plan(coils)
    assert block == ReadBlock(RegisterType.COIL, 0, 3, tuple(coils))
    assert extract(block, [1, 0, 0, 1, 1, 1, 1, 1]) == {"c0": True, "c2": False}


_MIXED = [
    spec("float32", address=0, name="f_abcd"),
    spec("float32", address=2, name="f_dcba", byte_order="DCBA"),
    spec("float32", address=4, name="f_cdab", byte_order="CDAB"),
    spec("int32", address=6, name="i_badc", byte_order="BADC", scale=0.1),
    spec("uint16", address=8, name="u16", scale=0.01, offset=-5),
    spec("int16", address=9, name="i16"),
    spec("uint64", address=10, name="u64", counter=True),
    spec("bits", address=14, name="b", bit=3, width=2),
    spec("string", address=15, name="s", length=5),
    spec("float64", address=18, name="f64"),
]


@given(st.binary(min_size=44, max_size=44))
def test_extract_wire_decodes_exactly_like_extract(data: bytes) -> None:
    """The poll's fast path gives the same values as the reference path, for any bytes."""
    (block,) = plan(_MIXED)
    assert block.count == 22
    registers = [int.from_bytes(data[i : i + 2], "big") for i in range(0, 44, 2)]
    # NaN and infinite floats decode to None on both paths, so plain equality holds.
    assert extract_wire(block, data) == extract(block, registers)


def test_extract_wire_reads_coils_and_refuses_short_data() -> None:
    coils = [spec("bool", address=a, name=f"c{a}", type="coil") for a in range(10)]
    (block,) = plan(coils)
    # Bits come least significant first (Modbus §6.1): 0b0000_0101, 0b10.
    assert extract_wire(block, bytes([0b0000_0101, 0b10])) == {
        f"c{a}": a in (0, 2, 9) for a in range(10)
    }
    (regs,) = plan(_MIXED)
    with pytest.raises(ValueError, match="short reply"):
        extract_wire(regs, bytes(40))
