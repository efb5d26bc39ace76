"""The Modbus register model: one `RegisterSpec` per value, and its codec (IO-free).

Addresses. `address` is the **protocol address**, 0-based, exactly what goes on the wire
(Modbus Application Protocol v1.1b3 §4.4: "data elements are addressed from 0 to 65535").
Vendors print the older Modicon numbers instead — input register "30001", holding "40001",
discrete input "10001", coil "00001" — where the first digit names the table and the rest
counts from 1. Those are written `register:` and converted (30001 → input address 0;
the six-digit form 300001-365536 reaches every address). Neither is guessed: an `address`
inside its table's five-digit vendor range (e.g. input 30001-39999) is refused with a
message, because it is almost always a copied vendor number that would read the wrong
register; a device that truly uses such an address is written with the six-digit
`register:` form.

Byte and word order name the four bytes A B C D of a big-endian 32-bit value (A most
significant) in the order the device sends them: ABCD (Modbus's own big-endian, Eastron),
CDAB (word-swapped), BADC (byte-swapped) and DCBA (little-endian). 64-bit values extend the
same two choices (word order and byte order within a register).
"""

from __future__ import annotations

import math
import struct
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from collections.abc import Sequence

Value = int | float | str | bool
"""A decoded value: numbers, text (strings) or flags (coils, one-bit fields)."""


class RegisterType(StrEnum):
    """The four Modbus tables (MB application protocol §4.3)."""

    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bit(self) -> bool:
        """True for the one-bit tables (coils, discrete inputs)."""
        return self in (RegisterType.COIL, RegisterType.DISCRETE)


class DataType(StrEnum):
    """How the bits of one value are laid out."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BITS = "bits"
    BOOL = "bool"


class ByteOrder(StrEnum):
    """Order of the bytes A B C D (A most significant) as the device sends them."""

    ABCD = "ABCD"
    DCBA = "DCBA"
    BADC = "BADC"
    CDAB = "CDAB"

    @property
    def words_reversed(self) -> bool:
        """The least significant register comes first."""
        return self in (ByteOrder.CDAB, ByteOrder.DCBA)

    @property
    def bytes_swapped(self) -> bool:
        """Each register carries its low byte first."""
        return self in (ByteOrder.BADC, ByteOrder.DCBA)


# struct format (big-endian) and register count per numeric type.
_NUMERIC: dict[DataType, tuple[str, int]] = {
    DataType.INT16: (">h", 1),
    DataType.UINT16: (">H", 1),
    DataType.INT32: (">i", 2),
    DataType.UINT32: (">I", 2),
    DataType.INT64: (">q", 4),
    DataType.UINT64: (">Q", 4),
    DataType.FLOAT32: (">f", 2),
    DataType.FLOAT64: (">d", 4),
}
_FLOATS = (DataType.FLOAT32, DataType.FLOAT64)
# Modicon numbering: (five-digit base, six-digit base) per table.
_VENDOR_BASE = {
    RegisterType.COIL: (0, 0),
    RegisterType.DISCRETE: (10000, 100000),
    RegisterType.INPUT: (30000, 300000),
    RegisterType.HOLDING: (40000, 400000),
}
MAX_STRING_BYTES = 250  # a read returns at most 125 registers (MB application protocol §6.3)


def vendor_to_address(register: int, table: RegisterType) -> int:
    """Convert a vendor register number (30001, 400001, …) of `table` to a protocol address."""
    five, six = _VENDOR_BASE[table]
    if table is RegisterType.COIL and 1 <= register <= 65536:
        return register - 1
    if five + 1 <= register <= five + 9999:
        return register - five - 1
    if six + 1 <= register <= six + 65536:
        return register - six - 1
    raise ValueError(
        f"register {register} is not a {table.value} number: write "
        f"{five + 1}-{five + 9999} or {six + 1}-{six + 65536}, or give the 0-based `address`"
    )


def _reorder(data: bytes, order: ByteOrder, *, words: bool = True) -> bytes:
    """Map between device byte order and big-endian; the mapping is its own inverse."""
    regs = [data[i : i + 2] for i in range(0, len(data), 2)]
    if words and order.words_reversed:
        regs.reverse()
    if order.bytes_swapped:
        regs = [r[::-1] for r in regs]
    return b"".join(regs)


class RegisterSpec(BaseModel):
    """One value a Modbus device holds: where it is, how it is encoded, what it means."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="Metric name, snake_case (becomes the reading's metric).",
    )
    type: RegisterType = Field(description="Modbus table: holding, input, coil or discrete.")
    address: int = Field(
        ge=0, le=65535, description="Protocol address, 0-based (vendor 30001 = address 0)."
    )
    register_number: int | None = Field(
        default=None,
        alias="register",
        ge=1,
        description="Vendor register number (30001, 40001, 300001, …) instead of `address`.",
    )
    data_type: DataType = Field(description="Encoding: int16 … float64, string, bits, bool.")
    length: int | None = Field(
        default=None, ge=1, le=MAX_STRING_BYTES, description="Bytes of text (strings only)."
    )
    bit: int | None = Field(default=None, ge=0, le=15, description="Lowest bit (bits only).")
    width: int = Field(default=1, ge=1, le=16, description="Number of bits (bits only).")
    byte_order: ByteOrder = Field(default=ByteOrder.ABCD, description="ABCD, DCBA, BADC or CDAB.")
    scale: float = Field(default=1.0, description="Value = raw * scale + offset.")
    offset: float = Field(default=0.0, description="Added after scaling.")
    unit: str = Field(default="", max_length=16, description="Unit after scaling (V, kWh, …).")
    counter: bool = Field(default=False, description="A cumulative counter (energy, volume).")
    wrap: float | None = Field(
        default=None, gt=0, description="Value at which the counter rolls over to zero."
    )
    description: str = Field(default="", description="Free text for people.")

    @field_validator("address", "register_number", mode="before")
    @classmethod
    def _hex_text(cls, value: Any) -> Any:
        # Register maps are printed in hex (0x0156); YAML text reaches us unparsed.
        if isinstance(value, str) and value.strip().lower().startswith("0x"):
            try:
                return int(value.strip(), 16)
            except ValueError:
                return value
        return value

    @model_validator(mode="before")
    @classmethod
    def _vendor_number(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("register") is None:
            return data
        if data.get("address") is not None:
            raise ValueError("give either `address` (0-based) or `register` (vendor), not both")
        try:
            table = RegisterType(str(data.get("type")))
            register = int(cls._hex_text(data["register"]))
        except (ValueError, TypeError):
            return data  # the field validators report the bad `type` or `register`
        return {**data, "address": vendor_to_address(register, table)}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        dt = self.data_type
        if self.type.is_bit != (dt is DataType.BOOL):
            raise ValueError("coils and discrete inputs are data_type bool, and only they are")
        if (dt is DataType.STRING) != (self.length is not None):
            raise ValueError("`length` (bytes) is required for strings and only for strings")
        if (dt is DataType.BITS) != (self.bit is not None):
            raise ValueError("`bit` is required for data_type bits and only for it")
        if self.bit is not None and self.bit + self.width > 16:
            raise ValueError(f"bits {self.bit}..{self.bit + self.width - 1} exceed one register")
        if dt not in _NUMERIC and (self.scale != 1 or self.offset != 0 or self.counter):
            raise ValueError(f"scale, offset and counter apply to numbers, not {dt.value}")
        if self.scale == 0 or not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise ValueError("scale must be a non-zero finite number and offset finite")
        if self.wrap is not None and not self.counter:
            raise ValueError("`wrap` is for counters: set `counter: true`")
        if self.address + self.count - 1 > 65535:
            raise ValueError(f"the value runs past address 65535 ({self.count} registers)")
        five = _VENDOR_BASE[self.type][0]
        if self.register_number is None and five and five < self.address <= five + 9999:
            raise ValueError(
                f"address {self.address} looks like a vendor register number; addresses are "
                f"0-based: write `register: {self.address}` (= address {self.address - five - 1}),"
                f" or `register: {_VENDOR_BASE[self.type][1] + self.address + 1}` if the device "
                f"really uses protocol address {self.address}"
            )
        return self

    @property
    def count(self) -> int:
        """Registers (or bits, for coils and discretes) this value occupies."""
        if self.data_type in _NUMERIC:
            return _NUMERIC[self.data_type][1]
        if self.data_type is DataType.STRING:
            return ((self.length or 0) + 1) // 2
        return 1

    @property
    def end(self) -> int:
        """First address after this value."""
        return self.address + self.count

    @cached_property
    def _direct(self) -> struct.Struct | None:
        """For numbers sent ABCD or DCBA, a Struct that reads them straight off the
        big-endian wire (DCBA is the wire read little-endian); None for the other cases."""
        if self.data_type not in _NUMERIC or self.byte_order not in (
            ByteOrder.ABCD,
            ByteOrder.DCBA,
        ):
            return None
        code = _NUMERIC[self.data_type][0][1:]
        return struct.Struct((">" if self.byte_order is ByteOrder.ABCD else "<") + code)

    @cached_property
    def _wire(self) -> struct.Struct:
        return struct.Struct(f">{self.count}H")

    def decode(self, registers: Sequence[int]) -> Value | None:
        """Decode this value from its registers; None for a float that is NaN or infinite."""
        if len(registers) != self.count:
            raise ValueError(f"{self.name}: {len(registers)} registers given, {self.count} needed")
        direct = self._direct
        if direct is not None:
            # The hot path of every poll (most meters send ABCD): no reordering needed.
            try:
                (number,) = direct.unpack(self._wire.pack(*registers))
            except struct.error:
                raise ValueError(f"{self.name}: register values must be 0..65535") from None
            return self._scaled(number)
        if self.data_type is DataType.BOOL:
            return bool(registers[0])
        if any(not 0 <= r <= 0xFFFF for r in registers):
            raise ValueError(f"{self.name}: register values must be 0..65535")
        wire = b"".join(r.to_bytes(2, "big") for r in registers)
        if self.data_type is DataType.STRING:
            text = _reorder(wire, self.byte_order, words=False)[: self.length]
            return text.rstrip(b"\x00 ").decode("ascii", errors="replace")
        raw = _reorder(wire, self.byte_order)
        if self.data_type is DataType.BITS:
            field = (int.from_bytes(raw, "big") >> (self.bit or 0)) & ((1 << self.width) - 1)
            return bool(field) if self.width == 1 else field
        (number,) = struct.unpack(_NUMERIC[self.data_type][0], raw)
        return self._scaled(number)

    def decode_at(self, data: bytes, first: int) -> Value | None:
        """Decode this value from big-endian register bytes, starting at register `first`."""
        direct = self._direct
        if direct is not None:  # most meters send ABCD: straight off the wire
            return self._scaled(direct.unpack_from(data, 2 * first)[0])
        start = 2 * first
        return self.decode(
            [
                int.from_bytes(data[i : i + 2], "big")
                for i in range(start, start + 2 * self.count, 2)
            ]
        )

    def _scaled(self, number: float) -> Value | None:
        if self.data_type in _FLOATS and not math.isfinite(number):
            # A NaN or infinity is no measurement: it cannot be aggregated nor sent as
            # JSON. The caller records the poll as bad (Quality.BAD) instead of a value.
            return None
        if self.scale == 1 and self.offset == 0:
            return number
        return float(number * self.scale + self.offset)

    def encode(self, value: Value) -> list[int]:
        """Encode `value` into registers (for writes and simulators); inverse of decode."""
        if self.data_type is DataType.BOOL:
            return [int(bool(value))]
        if self.data_type is DataType.STRING:
            if not isinstance(value, str):
                raise TypeError(f"{self.name}: a string register takes str")
            data = value.encode("ascii")
            if len(data) > (self.length or 0):
                raise ValueError(f"{self.name}: {len(data)} bytes exceed length {self.length}")
            data = data.ljust(self.count * 2, b"\x00")
            return _registers(_reorder(data, self.byte_order, words=False))
        if self.data_type is DataType.BITS:
            field = int(value)
            if not 0 <= field < 1 << self.width:
                raise ValueError(f"{self.name}: {field} does not fit in {self.width} bit(s)")
            # The other bits of the register read as zero: a write that must keep them
            # is a read-modify-write, which is the caller's business.
            return _registers(_reorder((field << (self.bit or 0)).to_bytes(2), self.byte_order))
        if isinstance(value, str):
            raise TypeError(f"{self.name}: a {self.data_type.value} register takes a number")
        fmt = _NUMERIC[self.data_type][0]
        try:
            if isinstance(value, int) and self.scale == 1 and self.offset == 0:
                # Exact: a 64-bit integer does not survive a trip through float.
                packed = struct.pack(fmt, value)
            elif self.data_type in _FLOATS:
                packed = struct.pack(fmt, (float(value) - self.offset) / self.scale)
            else:
                packed = struct.pack(fmt, round((float(value) - self.offset) / self.scale))
        except (struct.error, OverflowError, ValueError) as exc:
            raise ValueError(f"{self.name}: {value!r} does not fit a {self.data_type}") from exc
        return _registers(_reorder(packed, self.byte_order))


def _registers(data: bytes) -> list[int]:
    """Split big-endian bytes into 16-bit register values."""
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
