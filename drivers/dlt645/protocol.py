"""DL/T 645-2007 frames: encode, decode, replies and a streaming parser (IO-free).

Frame (protocols.md §3.2)::

    [FE…] 68 A0..A5 68 C L DATA… CS 16

The address is 12 BCD digits sent least significant byte first; every DATA byte travels
+0x33; CS is the 8-bit sum from the first 0x68 through the last DATA byte (after +0x33).
Nothing here touches a port or an event loop, so it is golden-tested and fuzzed directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

START = 0x68
END = 0x16
WAKE_UP = 0xFE
PREAMBLE = bytes([WAKE_UP] * 4)
DATA_OFFSET = 0x33
HEADER_LEN = 10  # 68, six address bytes, 68, C, L
MAX_FRAME_LEN = HEADER_LEN + 255 + 2  # L is one byte; then CS and 16
WILDCARD_ADDRESS = "AAAAAAAAAAAA"  # read-address on a point-to-point line (§3.2)
BROADCAST_ADDRESS = "999999999999"  # broadcast commands, never answered

# Control code bits (§3.2): D7 direction, D6 abnormal reply, D5 follow-up frames.
REPLY_BIT = 0x80
ERROR_BIT = 0x40
FOLLOW_BIT = 0x20
FUNCTION_MASK = 0x1F


class Function(IntEnum):
    """Control-code function (bits D4-D0)."""

    BROADCAST_TIME = 0x08
    READ_DATA = 0x11
    READ_FOLLOW_UP = 0x12
    READ_ADDRESS = 0x13
    WRITE_DATA = 0x14
    WRITE_ADDRESS = 0x15
    FREEZE = 0x16
    CHANGE_BAUD = 0x17
    CHANGE_PASSWORD = 0x18
    CLEAR_MAX_DEMAND = 0x19
    CLEAR_METER = 0x1A
    CLEAR_EVENTS = 0x1B


# Abnormal-reply error byte, bit by bit (§3.2).
ERROR_BITS: tuple[tuple[int, str], ...] = (
    (0x01, "other error"),
    (0x02, "no requested data (unknown data identifier)"),
    (0x04, "password wrong or not authorised"),
    (0x08, "baud rate cannot be changed"),
    (0x10, "too many year time zones"),
    (0x20, "too many day time slots"),
    (0x40, "too many tariffs"),
)


class FrameError(ValueError):
    """Bytes that are not one valid DL/T 645 frame."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame; `address` as printed on the meter, `data` without the +0x33 offset."""

    address: str
    control: int
    data: bytes = b""

    @property
    def function(self) -> int:
        """The control code's function bits (a `Function` value for known ones)."""
        return self.control & FUNCTION_MASK

    @property
    def is_reply(self) -> bool:
        """Sent by a meter (D7 set)."""
        return bool(self.control & REPLY_BIT)

    @property
    def is_abnormal(self) -> bool:
        """An abnormal (error) reply (D6 set)."""
        return bool(self.control & ERROR_BIT)

    @property
    def has_follow_up(self) -> bool:
        """More frames follow (D5 set)."""
        return bool(self.control & FOLLOW_BIT)


@dataclass(frozen=True, slots=True)
class DataReply:
    """A normal read reply: the data identifier and its raw value bytes (LSB first)."""

    address: str
    di: int
    value: bytes
    follow_up: bool = False


@dataclass(frozen=True, slots=True)
class AddressReply:
    """A meter's answer to read-address: its communication address."""

    address: str


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An abnormal reply: the error byte and what its bits mean."""

    address: str
    function: int
    code: int

    @property
    def messages(self) -> list[str]:
        """Readable meaning of every bit set in the error byte."""
        return error_messages(self.code)


Reply = DataReply | AddressReply | ErrorReply


def error_messages(code: int) -> list[str]:
    """Readable meanings of an abnormal reply's error byte (bit 7 is reserved)."""
    found = [text for bit, text in ERROR_BITS if code & bit]
    return found or [f"unknown error 0x{code:02X}"]


def address_to_wire(address: str) -> bytes:
    """12 digits as printed (or the AA/99 wildcards) → six bytes, least significant first."""
    if len(address) != 12 or not (address.isdigit() or address.upper() == WILDCARD_ADDRESS):
        raise FrameError(f"address must be 12 digits or {WILDCARD_ADDRESS}, not {address!r}")
    return bytes.fromhex(address)[::-1]


def address_from_wire(raw: bytes) -> str:
    """Six address bytes (least significant first) → 12 characters as printed."""
    return raw[::-1].hex().upper()


def checksum(frame: bytes | bytearray) -> int:
    """8-bit sum of the bytes from the first 0x68 through the last data byte."""
    return sum(frame) & 0xFF


def encode_frame(frame: Frame, *, preamble: bool = True) -> bytes:
    """Frame → wire bytes, with the four FE wake-up bytes unless `preamble` is False."""
    if len(frame.data) > 255:
        raise FrameError(f"data is {len(frame.data)} bytes; at most 255 fit")
    if not 0 <= frame.control <= 0xFF:
        raise FrameError(f"control code {frame.control} is not a byte")
    body = bytes(
        [START, *address_to_wire(frame.address), START, frame.control, len(frame.data)]
        + [(b + DATA_OFFSET) & 0xFF for b in frame.data]
    )
    return (PREAMBLE if preamble else b"") + body + bytes([checksum(body), END])


def decode_frame(raw: bytes) -> Frame:
    """Exactly one frame (leading FE bytes allowed) → Frame; FrameError otherwise."""
    start = 0
    while start < len(raw) and raw[start] == WAKE_UP:
        start += 1
    body = raw[start:]
    if len(body) < HEADER_LEN + 2:
        raise FrameError(f"{len(body)} bytes are too short for a frame")
    if body[0] != START or body[7] != START:
        raise FrameError("missing 0x68 start bytes")
    length = body[9]
    if len(body) != HEADER_LEN + length + 2:
        raise FrameError(f"length byte says {length} data bytes; frame has {len(body) - 12}")
    if body[-1] != END:
        raise FrameError(f"frame ends with 0x{body[-1]:02X}, not 0x16")
    if checksum(body[:-2]) != body[-2]:
        raise FrameError(f"checksum 0x{body[-2]:02X}, expected 0x{checksum(body[:-2]):02X}")
    return frame_from_body(body)


def frame_from_body(body: bytes) -> Frame:
    """Frame from a checked body (the first 0x68 through the 0x16, checksum verified)."""
    data = bytes((b - DATA_OFFSET) & 0xFF for b in body[HEADER_LEN:-2])
    return Frame(address_from_wire(body[1:7]), body[8], data)


def read_request(address: str, di: int, *, preamble: bool = True) -> bytes:
    """A read-data request for data identifier `di` (DI3..DI0 as a 32-bit number)."""
    return encode_frame(Frame(address, Function.READ_DATA, di_to_bytes(di)), preamble=preamble)


def read_address_request(*, preamble: bool = True) -> bytes:
    """Ask the only meter on a point-to-point line for its address (wildcard AA…AA)."""
    return encode_frame(Frame(WILDCARD_ADDRESS, Function.READ_ADDRESS), preamble=preamble)


def di_to_bytes(di: int) -> bytes:
    """Data identifier → its four bytes in wire order (DI0 first, §3.2)."""
    if not 0 <= di <= 0xFFFFFFFF:
        raise FrameError(f"data identifier {di} is not 32 bits")
    return di.to_bytes(4, "little")


def parse_reply(frame: Frame) -> Reply:
    """Interpret a meter's reply frame; FrameError when it is not a reply we understand."""
    if not frame.is_reply:
        raise FrameError(f"control 0x{frame.control:02X} is a request, not a reply")
    if frame.is_abnormal:
        if len(frame.data) != 1:
            raise FrameError(f"abnormal reply carries {len(frame.data)} bytes, not one")
        return ErrorReply(frame.address, frame.function, frame.data[0])
    if frame.function == Function.READ_ADDRESS:
        if len(frame.data) != 6:
            raise FrameError("read-address reply must carry the 6-byte address")
        return AddressReply(address_from_wire(frame.data))
    if frame.function in (Function.READ_DATA, Function.READ_FOLLOW_UP):
        if len(frame.data) < 4:
            raise FrameError("read reply shorter than its data identifier")
        di = int.from_bytes(frame.data[:4], "little")
        return DataReply(frame.address, di, frame.data[4:], frame.has_follow_up)
    raise FrameError(f"reply to function 0x{frame.function:02X} is not handled")


def data_reply(address: str, di: int, value: bytes, *, follow_up: bool = False) -> Frame:
    """A meter's normal read reply (for simulators and tests)."""
    control = REPLY_BIT | Function.READ_DATA | (FOLLOW_BIT if follow_up else 0)
    return Frame(address, control, di_to_bytes(di) + value)


def error_reply(address: str, function: int, code: int) -> Frame:
    """A meter's abnormal reply to `function` with error byte `code`."""
    return Frame(address, REPLY_BIT | ERROR_BIT | (function & FUNCTION_MASK), bytes([code]))


def address_reply(address: str) -> Frame:
    """A meter's answer to read-address: its own address as the data."""
    return Frame(address, REPLY_BIT | Function.READ_ADDRESS, address_to_wire(address))
