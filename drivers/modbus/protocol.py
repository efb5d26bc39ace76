"""Modbus frames: requests, RTU and TCP (MBAP) framing, reply receivers (IO-free).

References: Modbus Application Protocol v1.1b3 (PDUs, §6 functions, §7 exceptions) and
Modbus over Serial Line v1.02 (RTU framing, §2.5.1.2 CRC). The receivers are what
`gateway.links.Link.exchange` feeds with the bytes that arrive: each returns the reply
PDU once complete, None while bytes are missing, and raises FrameError (CrcError) for
bytes that can never become the reply. Nothing here touches a port, so the parsers are
golden-tested and fuzzed directly.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_FUNCTIONS = (1, 2, 3, 4)
WRITE_COIL, WRITE_REGISTER, WRITE_COILS, WRITE_REGISTERS = 5, 6, 15, 16
EXCEPTION_BIT = 0x80
MAX_RTU_FRAME = 256  # Serial Line §2.5.1: address + PDU (253) + CRC
MAX_MBAP_LENGTH = 254  # MBAP "length" counts the unit id and the PDU

# Exception codes, Application Protocol §7.
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class FrameError(ValueError):
    """Bytes that are not the expected reply (wrong shape, wrong function)."""


class CrcError(FrameError):
    """An RTU frame whose CRC does not match: noise on the line, or a second master."""


class ModbusExceptionError(Exception):
    """The device answered with an exception response (function | 0x80, code)."""

    def __init__(self, function: int, code: int) -> None:
        self.function = function
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"exception {code} ({name}) to function {function}")


def crc16(data: bytes | bytearray) -> int:
    """Modbus CRC-16: init 0xFFFF, reflected polynomial 0xA001 (Serial Line §6.2.2)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def read_pdu(function: int, address: int, count: int) -> bytes:
    """A read request PDU (functions 1-4): function, start address, quantity."""
    if function not in READ_FUNCTIONS:
        raise ValueError(f"function {function} is not a read")
    return bytes([function]) + address.to_bytes(2, "big") + count.to_bytes(2, "big")


def write_registers_pdu(address: int, registers: list[int]) -> bytes:
    """Write one holding register (function 6) or several (function 16)."""
    if len(registers) == 1:
        return bytes([WRITE_REGISTER]) + address.to_bytes(2, "big") + registers[0].to_bytes(2)
    data = b"".join(r.to_bytes(2, "big") for r in registers)
    head = bytes([WRITE_REGISTERS]) + address.to_bytes(2, "big") + len(registers).to_bytes(2)
    return head + bytes([len(data)]) + data


def write_coil_pdu(address: int, value: bool) -> bytes:
    """Write one coil (function 5): ON is 0xFF00, OFF 0x0000 (§6.5)."""
    return bytes([WRITE_COIL]) + address.to_bytes(2, "big") + (b"\xff\x00" if value else b"\0\0")


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    """Unit id + PDU + CRC, the CRC low byte first (Serial Line §2.5.1.2)."""
    body = bytes([unit]) + pdu
    return body + crc16(body).to_bytes(2, "little")


def mbap_frame(transaction: int, unit: int, pdu: bytes) -> bytes:
    """MBAP header (transaction, protocol 0, length, unit) + PDU (Modbus TCP §3.1.3)."""
    return (
        transaction.to_bytes(2, "big")
        + b"\0\0"
        + (len(pdu) + 1).to_bytes(2, "big")
        + bytes([unit])
        + pdu
    )


def _pdu_length(pdu_head: bytes | bytearray) -> int | None:
    """Length of a reply PDU from its first bytes; None while too few are known."""
    function = pdu_head[0]
    if function & EXCEPTION_BIT:
        return 2
    if function in READ_FUNCTIONS:
        return None if len(pdu_head) < 2 else 2 + pdu_head[1]
    if function in (WRITE_COIL, WRITE_REGISTER, WRITE_COILS, WRITE_REGISTERS):
        return 5
    raise FrameError(f"reply with unexpected function {function}")


@dataclass(slots=True)
class RtuReceiver:
    """Collects the RTU reply of `unit` to `function`; bytes before it are skipped."""

    unit: int
    function: int
    buffer: bytearray | None = None
    skipped: int = 0

    def feed(self, data: bytes) -> bytes | None:
        """Take bytes; the reply PDU once complete and its CRC checked."""
        buf = self.buffer = (self.buffer or bytearray()) + data
        wanted = (self.function, self.function | EXCEPTION_BIT)
        while buf and (buf[0] != self.unit or (len(buf) > 1 and buf[1] not in wanted)):
            del buf[0]  # line noise before the reply, or another unit's late answer
            self.skipped += 1
        if len(buf) < 3:
            return None
        length = _pdu_length(buf[1:])
        if length is None:
            return None
        total = 1 + length + 2
        if total > MAX_RTU_FRAME:
            raise FrameError(f"reply claims {total} bytes; an RTU frame holds at most 256")
        if len(buf) < total:
            return None
        frame = bytes(buf[:total])
        if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
            raise CrcError(f"CRC error in reply from unit {self.unit}: {frame.hex(' ')}")
        return frame[1:-2]


@dataclass(slots=True)
class MbapReceiver:
    """Collects the Modbus TCP reply to `transaction`; replies to older ones are dropped."""

    transaction: int
    unit: int
    buffer: bytearray | None = None
    stale: int = 0

    def feed(self, data: bytes) -> bytes | None:
        """Take bytes; the reply PDU once its whole MBAP frame is in."""
        buf = self.buffer = (self.buffer or bytearray()) + data
        while len(buf) >= 7:
            if buf[2:4] != b"\0\0":
                raise FrameError(f"not a Modbus TCP frame (protocol id {buf[2:4].hex()})")
            length = int.from_bytes(buf[4:6], "big")
            if not 2 <= length <= MAX_MBAP_LENGTH:
                raise FrameError(f"Modbus TCP length {length} is out of range")
            if len(buf) < 6 + length:
                return None
            frame = bytes(buf[: 6 + length])
            del buf[: 6 + length]
            if int.from_bytes(frame[:2], "big") != self.transaction:
                self.stale += 1  # a late answer to a request that already timed out
                continue
            return frame[7:]
        return None


def reply_data(function: int, count: int, pdu: bytes) -> bytes:
    """The data bytes of a reply PDU to a read (registers big-endian, or packed bits),
    checked against what was asked; raises on exceptions. Empty for a write's echo."""
    if not pdu:
        raise FrameError("empty reply")
    if pdu[0] == function | EXCEPTION_BIT:
        if len(pdu) != 2:
            raise FrameError("exception reply must carry one code byte")
        raise ModbusExceptionError(function, pdu[1])
    if pdu[0] != function:
        raise FrameError(f"reply to function {pdu[0]}, expected {function}")
    if function not in READ_FUNCTIONS:
        return b""  # a write's echo: nothing to decode
    if len(pdu) < 2 or len(pdu) != 2 + pdu[1]:
        raise FrameError("byte count does not match the reply's length")
    data = pdu[2:]
    if function in (1, 2):
        if len(data) != (count + 7) // 8:
            raise FrameError(f"{len(data)} data bytes for {count} bits")
    elif len(data) != 2 * count:
        raise FrameError(f"{len(data) // 2} registers in the reply, {count} asked for")
    return data


def parse_reply(function: int, count: int, pdu: bytes) -> list[int]:
    """Registers (or 0/1 bits) from a reply PDU to a read; raises on exceptions."""
    data = reply_data(function, count, pdu)
    if function in (1, 2):
        # The first bit is the least significant bit of the first byte (§6.1).
        return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
