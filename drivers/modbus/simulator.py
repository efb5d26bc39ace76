"""A Modbus meter simulator on pymodbus's own server: TCP, RTU over TCP, RTU on a serial port.

Each unit serves a register map (a shipped profile's, or any `RegisterSpec` list) with
plausible values that change while it is read — voltage around 230 V, a power that
wanders, and cumulative energy counters that only grow. pymodbus's server does the
framing, so the driver is checked against an independent implementation of the protocol.

Fault switches per unit (`Faults`): stop answering, answer slowly, corrupt the CRC (RTU
framing), answer every request with an exception. `requests` counts what each unit was
asked, per function code, at the server. With `line_baud` set, every reply is held back
for the time the request and the reply would take on an RS-485 line at that rate plus
the meter's turnaround (the bus-utilisation benchmark); `line_busy` sums that time.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from drivers.modbus.registers import DataType, RegisterType

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from drivers.modbus.registers import RegisterSpec, Value

BITS_PER_CHAR = 10  # 8N1 start + 8 data + stop (a pty cannot do parity: contract.md)
_TABLE_OF = {1: RegisterType.COIL, 2: RegisterType.DISCRETE, 3: RegisterType.HOLDING}
_TABLE_OF |= {4: RegisterType.INPUT, 5: RegisterType.COIL, 6: RegisterType.HOLDING}
_TABLE_OF |= {15: RegisterType.COIL, 16: RegisterType.HOLDING}
# Typical values per unit, for plausible readings: (mean, relative wander).
_TYPICAL = {"V": (230.0, 0.01), "A": (5.0, 0.2), "W": (1150.0, 0.2), "kW": (1.15, 0.2)}
_TYPICAL |= {"VA": (1200.0, 0.2), "var": (200.0, 0.3), "VAr": (200.0, 0.3), "Hz": (50.0, 0.002)}


@dataclass(slots=True)
class Faults:
    """Fault switches of one simulated unit; change them while the server runs."""

    silent: bool = False
    delay: float = 0.0
    corrupt_crc: bool = False
    exception: int | None = None


class SimulatedUnit:
    """One meter's registers, kept as the source of truth the server answers from."""

    def __init__(self, unit: int, specs: Sequence[RegisterSpec], *, changing: bool = True) -> None:
        self.unit = unit
        self.specs = {spec.name: spec for spec in specs}
        self.faults = Faults()
        self.changing = changing
        self.tables: dict[RegisterType, dict[int, int]] = {t: {} for t in RegisterType}
        self._rng = random.Random(unit)
        self._last = time.monotonic()
        self._means: dict[str, float] = {}
        for spec in specs:
            value = self._initial(spec)
            self.set(spec.name, value)
            if isinstance(value, float):
                self._means[spec.name] = value

    def _initial(self, spec: RegisterSpec) -> Value:
        if spec.data_type is DataType.STRING:
            return f"SIM{self.unit}"[: spec.length]
        if spec.data_type in (DataType.BOOL, DataType.BITS):
            return 0
        if spec.counter:
            return 1000.0 + self.unit
        if "power_factor" in spec.name:
            return 0.95
        mean = _TYPICAL.get(spec.unit, (0.0, 0.0))[0]
        if spec.unit == "V" and any(p in spec.name for p in ("l1_l2", "l2_l3", "l3_l1")):
            mean = 400.0
        return mean if spec.data_type in (DataType.FLOAT32, DataType.FLOAT64) else round(mean)

    def set(self, name: str, value: Value) -> None:
        """Store `value` in the registers of `name`, encoded as its spec says."""
        spec = self.specs[name]
        for i, register in enumerate(spec.encode(value)):
            self.tables[spec.type][spec.address + i] = register

    def get(self, name: str) -> Value | None:
        """The value of `name` as a client would decode it."""
        spec = self.specs[name]
        table = self.tables[spec.type]
        return spec.decode([table.get(spec.address + i, 0) for i in range(spec.count)])

    def advance(self) -> None:
        """Let time pass: gauges wander, energy counters grow with the power drawn."""
        now = time.monotonic()
        hours, self._last = (now - self._last) / 3600, now
        for spec in self.specs.values():
            if spec.data_type not in (DataType.FLOAT32, DataType.FLOAT64):
                continue
            if spec.counter:
                value = self.get(spec.name)
                if isinstance(value, float):
                    self.set(spec.name, value + 1.15 * hours * self._rng.uniform(0.8, 1.2))
            elif spec.unit in _TYPICAL and spec.name in self._means:
                wander = _TYPICAL[spec.unit][1]
                mean = self._means[spec.name]
                self.set(spec.name, mean * (1 + self._rng.uniform(-wander, wander)))


class ModbusSimulator:
    """Simulated units behind one pymodbus server; `start_*` it, `stop()` it."""

    def __init__(
        self,
        units: dict[int, SimulatedUnit],
        *,
        line_baud: int | None = None,
        turnaround: float = 0.005,
    ) -> None:
        self.units = units
        self.line_baud = line_baud
        self.turnaround = turnaround
        self.requests: Counter[tuple[int, int]] = Counter()
        """Requests received, per (unit id, function code)."""
        self.line_busy = 0.0
        """Modelled seconds the RS-485 line was busy (with `line_baud`)."""
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._framing = FramerType.SOCKET

    @classmethod
    def of(
        cls, units: Mapping[int, Sequence[RegisterSpec]], *, changing: bool = True, **kw: Any
    ) -> ModbusSimulator:
        """A simulator with one `SimulatedUnit` per unit id."""
        made = {u: SimulatedUnit(u, specs, changing=changing) for u, specs in units.items()}
        return cls(made, **kw)

    def _devices(self) -> list[SimDevice]:
        devices = []
        for unit_id, unit in self.units.items():
            size = dict.fromkeys(RegisterType, 16)
            for spec in unit.specs.values():
                size[spec.type] = max(size[spec.type], spec.end + 1)
            bits = [(t, -(-size[t] // 16) * 16) for t in (RegisterType.COIL, RegisterType.DISCRETE)]
            regs = [(t, size[t]) for t in (RegisterType.HOLDING, RegisterType.INPUT)]
            blocks = [[SimData(0, count=n, values=False, datatype=SimType.BITS)] for _, n in bits]
            blocks += [[SimData(0, count=n, values=0, datatype=SimType.UINT16)] for _, n in regs]
            action = partial(self._action, unit_id)
            simdata = (blocks[0], blocks[1], blocks[2], blocks[3])
            devices.append(SimDevice(unit_id, simdata=simdata, action=action))
        return devices

    async def start_tcp(
        self, *, framing: str = "tcp", host: str = "127.0.0.1", port: int = 0
    ) -> int:
        """Serve Modbus TCP (or RTU framing over TCP, `framing="rtu"`); returns the port."""
        self._framing = FramerType.RTU if framing == "rtu" else FramerType.SOCKET
        self._server = ModbusTcpServer(
            self._devices(),
            framer=self._framing,
            address=(host, port),
            ignore_missing_devices=True,
            trace_packet=self._trace,
        )
        await self._server.serve_forever(background=True)
        listener = cast("asyncio.Server", self._server.transport)
        return int(listener.sockets[0].getsockname()[1])

    async def start_serial(self, path: str, baudrate: int = 9600) -> None:
        """Serve Modbus RTU on a serial port (one end of a pty pair in tests)."""
        self._framing = FramerType.RTU
        self._server = ModbusSerialServer(
            self._devices(),
            framer=FramerType.RTU,
            port=path,
            baudrate=baudrate,
            ignore_missing_devices=True,
            trace_packet=self._trace,
        )
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not (sending and self._framing is FramerType.RTU and data):
            return data
        unit = self.units.get(data[0])
        if unit is not None and unit.faults.corrupt_crc:
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    async def _action(
        self,
        unit_id: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests[unit_id, function_code] += 1
        unit = self.units[unit_id]
        faults = unit.faults
        if faults.silent:
            raise NoSuchIdException(f"unit {unit_id} is switched off")  # no reply at all
        await self._line_delay(function_code, count, faults.delay)
        if faults.exception is not None:
            return ExcCodes(faults.exception)
        table = unit.tables[_TABLE_OF[function_code]]
        if function_code in (1, 2, 5, 15):
            return self._bits(table, start_address, address, count, registers, set_values)
        if set_values:
            for i, value in enumerate(set_values):
                table[address + i] = int(value)
            return None
        if unit.changing:
            unit.advance()
        for i in range(count):
            registers[address - start_address + i] = table.get(address + i, 0)
        return None

    @staticmethod
    def _bits(
        table: dict[int, int],
        start: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        # pymodbus packs 16 bits per register, bit 0 first; `count` is in registers here.
        first = address // 16
        if set_values:
            for i, value in enumerate(set_values):
                table[address + i] = int(bool(value))
            return
        for r in range(count):
            word = sum(table.get((first + r) * 16 + b, 0) << b for b in range(16))
            registers[first - start + r] = word

    async def _line_delay(self, function_code: int, count: int, extra: float) -> None:
        if self.line_baud is None:
            if extra:
                await asyncio.sleep(extra)
            return
        # RTU read: request 8 bytes; reply 5 + data; 3.5 characters of silence after each.
        data = 2 * count if function_code in (3, 4) else math.ceil(count / 8)
        chars = 8 + 5 + data + 7
        line = chars * BITS_PER_CHAR / self.line_baud + self.turnaround + extra
        self.line_busy += line
        await asyncio.sleep(line)
