"""Request coalescing: read neighbouring registers in one request, then slice (IO-free).

One request per data point is the commonest cause of slow meter polling on a shared
RS-485 bus: every transaction costs a request frame, the device's turnaround and two
3.5-character silences. `plan` groups values of the same table into the fewest read
requests that stay within a maximum gap of unused registers and the per-request maximum;
`extract` decodes one block's answer into named values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.modbus.registers import RegisterSpec, RegisterType, Value

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

# Protocol limits per request (MB application protocol v1.1b3): FC3/FC4 read at most 125
# registers (§6.3, §6.4), FC1/FC2 at most 2000 bits (§6.1, §6.2).
MAX_REGISTERS = 125
MAX_BITS = 2000
# Reading an unused register costs 2 bytes (~2 ms at 9600 baud); a separate request costs
# ~13 bytes of framing, two 3.5-character silences and the device's turnaround (tens of
# ms). Sixteen skipped registers is well inside the break-even point on any baud rate.
DEFAULT_MAX_GAP = 16

_FUNCTION_CODE = {
    RegisterType.COIL: 1,
    RegisterType.DISCRETE: 2,
    RegisterType.HOLDING: 3,
    RegisterType.INPUT: 4,
}


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: `count` registers (or bits) of one table from `address`."""

    type: RegisterType
    address: int
    count: int
    specs: tuple[RegisterSpec, ...]

    @property
    def function_code(self) -> int:
        """The Modbus read function for this table (1, 2, 3 or 4)."""
        return _FUNCTION_CODE[self.type]


def protocol_limit(table: RegisterType) -> int:
    """The largest read the protocol allows for `table` (registers or bits)."""
    return MAX_BITS if table.is_bit else MAX_REGISTERS


def plan(
    specs: Iterable[RegisterSpec],
    max_gap: int = DEFAULT_MAX_GAP,
    max_count: int | None = None,
) -> list[ReadBlock]:
    """Group `specs` into the fewest reads, each within `max_gap` and `max_count`.

    `max_gap` is the most unused registers (bits) a request may span between two values;
    `max_count` is the device's own per-request limit (None: the protocol's), capped by
    the protocol's per table. Blocks come out ordered by table, then address.
    Raises ValueError when a single value is larger than the per-request limit.
    """
    if max_gap < 0:
        raise ValueError("max_gap must be 0 or more")
    if max_count is not None and max_count < 1:
        raise ValueError("max_count must be 1 or more")
    by_table: dict[RegisterType, list[RegisterSpec]] = {}
    for spec in specs:
        by_table.setdefault(spec.type, []).append(spec)
    blocks: list[ReadBlock] = []
    for table in RegisterType:
        members = sorted(by_table.get(table, ()), key=lambda s: (s.address, s.end))
        limit = min(max_count or MAX_BITS, protocol_limit(table))
        blocks.extend(_plan_table(table, members, max_gap, limit))
    return blocks


def _plan_table(
    table: RegisterType, specs: Sequence[RegisterSpec], max_gap: int, limit: int
) -> list[ReadBlock]:
    """Greedy grouping of one table's specs (sorted by address).

    Extending the current block as far as the limits allow is optimal here: any other
    plan's first block ends no later than ours, and so on by induction.
    """
    blocks: list[ReadBlock] = []
    current: list[RegisterSpec] = []
    start = end = 0
    for spec in specs:
        if spec.count > limit:
            raise ValueError(
                f"{spec.name}: {spec.count} registers exceed the {limit} allowed per request"
            )
        if current and spec.address - end <= max_gap and max(end, spec.end) - start <= limit:
            current.append(spec)
            end = max(end, spec.end)
            continue
        if current:
            blocks.append(ReadBlock(table, start, end - start, tuple(current)))
        current, start, end = [spec], spec.address, spec.end
    if current:
        blocks.append(ReadBlock(table, start, end - start, tuple(current)))
    return blocks


def extract(block: ReadBlock, registers: Sequence[int]) -> dict[str, Value | None]:
    """Decode every value of `block` from the registers (bits) its read returned.

    A value is None when the device sent no number (a float NaN or infinity). Raises
    ValueError when fewer registers came back than the block asked for (a short reply).
    Coil and discrete replies are padded to a multiple of 8 bits; the extra is ignored.
    """
    if len(registers) < block.count:
        raise ValueError(f"short reply: {len(registers)} of {block.count} registers")
    values: dict[str, Value | None] = {}
    for spec in block.specs:
        first = spec.address - block.address
        values[spec.name] = spec.decode(registers[first : first + spec.count])
    return values


def extract_wire(block: ReadBlock, data: bytes) -> dict[str, Value | None]:
    """`extract`, from a reply's data bytes (`protocol.reply_data`): the poll's hot path.

    Numbers sent ABCD or DCBA are unpacked where they lie in the reply, without building
    a list of registers first; everything else goes through `extract`.
    """
    if block.type.is_bit:
        bits = [(data[i // 8] >> (i % 8)) & 1 for i in range(block.count)]
        return extract(block, bits)
    if len(data) < 2 * block.count:
        raise ValueError(f"short reply: {len(data) // 2} of {block.count} registers")
    values: dict[str, Value | None] = {}
    base = block.address
    for spec in block.specs:
        values[spec.name] = spec.decode_at(data, spec.address - base)
    return values
