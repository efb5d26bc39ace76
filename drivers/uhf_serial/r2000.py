"""R2000-family "0xA0" serial protocol (UHF RFID Reader Serial Interface Protocol V3.x).

Frame (both directions, protocols.md §1.3): A0 · Len (bytes after it) · Address · Cmd ·
Data · Check, where Check makes the 8-bit sum of the whole frame zero. The driver sends
real-time inventory (0x89) and re-issues it after each end-of-round frame: 0x89 runs one
round and stops.
"""

from __future__ import annotations

import struct

from drivers.uhf_serial.protocol import (
    HeadScanner,
    Reply,
    RoundEnd,
    UhfError,
    UhfFrame,
    UhfTag,
)

HEAD = 0xA0
PUBLIC_ADDRESS = 0xFF
"""Broadcast address: every reader answers (use it with a single reader on the line)."""

CMD_RESET = 0x70
CMD_GET_FIRMWARE = 0x72
CMD_SET_WORK_ANTENNA = 0x74
CMD_REALTIME_INVENTORY = 0x89
CMD_FAST_SWITCH_INVENTORY = 0x8A
CMD_SESSION_INVENTORY = 0x8B
CMD_GET_BUFFER = 0x90
CMD_GET_AND_RESET_BUFFER = 0x91

ERROR_SUCCESS = 0x10
ERROR_NO_TAG = 0x36
ERROR_TEXT: dict[int, str] = {
    0x10: "success",
    0x11: "command failed",
    0x20: "MCU reset error",
    0x21: "CW on error",
    0x22: "antenna missing",
    0x23: "flash write error",
    0x24: "flash read error",
    0x25: "set output power error",
    0x31: "tag inventory error",
    0x32: "tag read error",
    0x33: "tag write error",
    0x34: "tag lock error",
    0x35: "tag kill error",
    0x36: "no tag",
    0x37: "inventory ok but access failed",
    0x38: "buffer empty",
    0x40: "access or password error",
}

# Commands whose 1-byte reply is an ErrorCode (0x10 success) rather than a value.
_STATUS_COMMANDS = frozenset(
    {0x71, 0x73, 0x74, 0x76, 0x78, 0x7A, 0x80, 0x89, 0x8A, 0x8B, 0x90, 0x91, 0x93}
)
_REALTIME = frozenset({CMD_REALTIME_INVENTORY, CMD_FAST_SWITCH_INVENTORY, CMD_SESSION_INVENTORY})
_U16_U32 = struct.Struct(">HI")


def error_text(code: int) -> str:
    """The manual's words for an ErrorCode (0x41-0x4F parameter, 0x50-0x57 RF errors)."""
    if code in ERROR_TEXT:
        return ERROR_TEXT[code]
    if 0x41 <= code <= 0x4F:
        return f"parameter error 0x{code:02x}"
    if 0x50 <= code <= 0x57:
        return f"RF or regulation error 0x{code:02x}"
    return f"unknown error 0x{code:02x}"


def checksum(frame: bytes) -> int:
    """The Check byte for everything before it: two's complement of the 8-bit sum."""
    return (0x100 - sum(frame)) & 0xFF


def build_frame(address: int, command: int, data: bytes = b"") -> bytes:
    """One request frame with its Len and Check bytes."""
    if not 0 <= address <= 0xFF or not 0 <= command <= 0xFF or len(data) > 252:
        raise ValueError("address, command or data length out of range")
    body = bytes([HEAD, len(data) + 3, address, command]) + data
    return body + bytes([checksum(body)])


def build_realtime_inventory(address: int = PUBLIC_ADDRESS, repeat: int = 0xFF) -> bytes:
    """Real-time inventory (0x89): one round; `repeat` 0xFF = one quick round (manual)."""
    return build_frame(address, CMD_REALTIME_INVENTORY, bytes([repeat]))


def build_set_work_antenna(address: int, antenna: int) -> bytes:
    """Select the antenna (1-based port) for the next rounds (0x74 takes 0-based)."""
    return build_frame(address, CMD_SET_WORK_ANTENNA, bytes([antenna - 1]))


class R2000Parser(HeadScanner):
    """Streaming parser for R2000 replies; resynchronises on the next 0xA0 after garbage.

    `eight_antennas`: 8-port firmware moves antenna bit 2 into the RSSI byte's top bit.
    RSSI in dBm uses vendor demo code's approximation raw - 129 (protocols.md §8: the
    manual's lookup table was not seen); `rssi_raw` keeps the byte.
    """

    head = HEAD
    header = 2  # head, length

    def __init__(self, address: int = PUBLIC_ADDRESS, *, eight_antennas: bool = False) -> None:
        super().__init__()
        self.address = address
        self.eight_antennas = eight_antennas

    def inventory_command(self) -> bytes:
        """One real-time inventory round (send it again after each RoundEnd)."""
        return build_realtime_inventory(self.address)

    def _length(self, buf: bytearray, pos: int) -> int | None:
        length = buf[pos + 1]  # address, command, data and checksum
        return None if length < 3 else length + 2

    def _intact(self, buf: bytearray, pos: int, end: int) -> bool:
        return not sum(buf[pos:end]) & 0xFF  # protocols.md §1.3: the bytes sum to 0

    def _decode(self, buf: bytearray, pos: int, end: int) -> UhfFrame:
        return self._frame(bytes(buf[pos + 3 : end - 1]))

    def _frame(self, frame: bytes) -> UhfFrame:
        command, data = frame[0], frame[1:]
        if command in _STATUS_COMMANDS and len(data) == 1:
            code = data[0]
            if code != ERROR_SUCCESS:
                return UhfError(command, code, error_text(code), no_tag=code == ERROR_NO_TAG)
            return Reply(command, data)
        if command in _REALTIME:
            if len(data) == 7 and command != CMD_FAST_SWITCH_INVENTORY:
                rate, total = _U16_U32.unpack_from(data, 1)
                return RoundEnd(data[0] + 1, rate, total)
            if len(data) >= 4 and len(data) != 7:
                return self._tag(data[0], data[1:3], data[3:-1], data[-1], 1)
        if command in (CMD_GET_BUFFER, CMD_GET_AND_RESET_BUFFER) and len(data) >= 3:
            size = data[2]
            # TagCount u16, DataLen u8, PC+EPC+CRC (DataLen), RSSI, FreqAnt, ReadCount.
            if size >= 4 and len(data) == 3 + size + 3:
                rest = data[3 + size :]
                return self._tag(rest[1], data[3:5], data[5 : 1 + size], rest[0], rest[2])
        return Reply(command, data)

    def _tag(self, freq_ant: int, pc: bytes, epc: bytes, rssi: int, reads: int) -> UhfTag:
        antenna = (freq_ant & 0x03) + 1
        if self.eight_antennas and rssi & 0x80:
            antenna += 4
        level = rssi & 0x7F
        pc_word = (pc[0] << 8) | pc[1]
        return UhfTag(epc.hex(), antenna, level - 129, rssi, pc_word, freq_ant >> 2, reads)
