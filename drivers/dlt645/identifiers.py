"""DL/T 645-2007 data identifiers (DI) we read, with their BCD formats (IO-free).

Values are packed BCD, least significant byte first, with the decimal point implied by
the format (XXXXXX.XX = 4 bytes, 2 decimals). For signed quantities the top bit of the
most significant byte is the sign, 1 = negative (protocols.md §3.2); such a value holds
one digit less range (the top digit is 0-7).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType


class BcdError(ValueError):
    """Bytes that are not the BCD the format promises (a meter fault or a wrong DI)."""


@dataclass(frozen=True, slots=True)
class DataId:
    """One data identifier: what it measures and how its value bytes are encoded."""

    di: int
    name: str
    description: str
    length: int
    decimals: int
    unit: str
    signed: bool = False
    counter: bool = False

    @property
    def format(self) -> str:
        """The standard's picture of the value, e.g. `XXXXXX.XX`."""
        digits = 2 * self.length
        whole = "X" * (digits - self.decimals)
        return f"{whole}.{'X' * self.decimals}" if self.decimals else whole

    def decode(self, raw: bytes) -> float:
        """Value bytes of a reply (after the DI) → the scaled number."""
        if len(raw) != self.length:
            raise BcdError(f"{self.name}: {len(raw)} value bytes, format needs {self.length}")
        msb_first = bytearray(raw[::-1])
        negative = self.signed and bool(msb_first[0] & 0x80)
        if self.signed:
            msb_first[0] &= 0x7F
        digits = msb_first.hex()
        if not digits.isdigit():
            raise BcdError(f"{self.name}: {raw.hex(' ')} is not BCD")
        value = int(digits) / float(10**self.decimals)
        return -value if negative else value

    def encode(self, value: float) -> bytes:
        """The scaled number → value bytes (for simulators and tests)."""
        if value < 0 and not self.signed:
            raise ValueError(f"{self.name} is unsigned; {value} cannot be sent")
        number = round(abs(value) * 10**self.decimals)
        digits = f"{number:0{2 * self.length}d}"
        if len(digits) > 2 * self.length or (self.signed and digits[0] > "7"):
            raise ValueError(f"{value} does not fit {self.format} ({self.name})")
        msb_first = bytearray(bytes.fromhex(digits))
        if value < 0:
            msb_first[0] |= 0x80
        return bytes(msb_first[::-1])


def _phases(template: DataId) -> list[DataId]:
    """Phase A/B/C entries shaped like `template`: DI1 is 01, 02, 03 (protocols.md §3.2)."""
    return [
        replace(
            template,
            di=template.di | (n << 8),
            name=f"{template.name}_{p}",
            description=f"phase {p.upper()} {template.description}",
        )
        for n, p in ((1, "a"), (2, "b"), (3, "c"))
    ]


def _energy(di: int, name: str, text: str) -> DataId:
    """A total active energy register: XXXXXX.XX kWh, a counter."""
    return DataId(di, name, text, 4, 2, "kWh", counter=True)


def tariff_energy(tariff: int, *, export: bool = False) -> DataId:
    """Active energy of tariff 1-63 (DI 00 01 nn 00 import, 00 02 nn 00 export)."""
    if not 1 <= tariff <= 63:
        raise ValueError(f"tariff {tariff} is outside 1-63")
    direction = ("export", 0x00020000) if export else ("import", 0x00010000)
    return DataId(
        direction[1] | (tariff << 8),
        f"{direction[0]}_active_energy_t{tariff}",
        f"{'reverse' if export else 'forward'} active energy, tariff {tariff}",
        4,
        2,
        "kWh",
        counter=True,
    )


_TABLE: list[DataId] = [
    # Combined active energy follows the meter's combination word (by default forward +
    # reverse), so it only grows on a default-configured meter.
    _energy(0x00000000, "combined_active_energy", "combined active total energy"),
    _energy(0x00010000, "import_active_energy", "forward active total energy"),
    _energy(0x00020000, "export_active_energy", "reverse active total energy"),
    *(tariff_energy(n) for n in range(1, 5)),
    *_phases(DataId(0x02010000, "voltage", "voltage", 2, 1, "V")),
    *_phases(DataId(0x02020000, "current", "current", 3, 3, "A", signed=True)),
    DataId(0x02030000, "active_power", "total active power", 3, 4, "kW", signed=True),
    # Phase powers use the total's format, sign included: the sign gives the direction.
    *_phases(DataId(0x02030000, "active_power", "active power", 3, 4, "kW", signed=True)),
    DataId(0x02040000, "reactive_power", "total reactive power", 3, 4, "kvar", signed=True),
    DataId(0x02050000, "apparent_power", "total apparent power", 3, 4, "kVA"),
    DataId(0x02060000, "power_factor", "total power factor", 2, 3, "", signed=True),
    *_phases(DataId(0x02060000, "power_factor", "power factor", 2, 3, "", signed=True)),
    DataId(0x02800002, "frequency", "grid frequency", 2, 2, "Hz"),
]

IDENTIFIERS = MappingProxyType({entry.di: entry for entry in _TABLE})
"""Every data identifier in the table, by DI (DI3..DI0 as a 32-bit number)."""
BY_NAME = MappingProxyType({entry.name: entry for entry in _TABLE})
"""The same entries by metric name (`import_active_energy`, `voltage_a`, …)."""


def lookup(di: int) -> DataId | None:
    """The table entry for `di`, or None when we do not know its format."""
    return IDENTIFIERS.get(di)
