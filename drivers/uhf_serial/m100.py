"""M100/QM100 "0xBB" serial protocol (Magicrf modules: M5Stack UHF unit JRD-4035, R200, …).

Frame (protocols.md §1.4): BB · Type (0 command, 1 response, 2 notification) · Command ·
PL (u16 big-endian) · Parameters (PL bytes) · Checksum · 7E, where Checksum is the low
byte of the sum of Type through the last parameter (the header is not summed). Tags
arrive as notifications of 0x22 (single poll) or 0x27 (multiple polling).
"""

from __future__ import annotations

from drivers.uhf_serial.protocol import HeadScanner, Reply, UhfError, UhfFrame, UhfTag

HEAD = 0xBB
END = 0x7E
TYPE_COMMAND = 0x00
TYPE_RESPONSE = 0x01
TYPE_NOTIFICATION = 0x02

CMD_SINGLE_POLL = 0x22
CMD_MULTI_POLL = 0x27
CMD_STOP_MULTI_POLL = 0x28
CMD_ERROR = 0xFF

MAX_PARAMS = 512
"""Largest PL we wait for: real frames stay far below (a 62-byte EPC gives PL 67), while
a corrupt PL of up to 65,535 would stall the parser waiting for bytes."""

ERROR_NO_TAG = 0x15
ERROR_TEXT: dict[int, str] = {
    0x09: "read failed",
    0x10: "write failed",
    0x12: "kill failed",
    0x13: "lock failed",
    0x15: "no tag (inventory found nothing)",
    0x16: "access password error",
    0x17: "invalid command frame",
    0x20: "frequency hopping timeout",
}
_TAG_ERROR_OPS = {0xA0: "read", 0xB0: "write", 0xC0: "lock", 0xD0: "kill"}


def error_text(code: int) -> str:
    """The manual's words for an error code; 0xA0|e … 0xD0|e are Gen2 tag errors e."""
    if code in ERROR_TEXT:
        return ERROR_TEXT[code]
    op = _TAG_ERROR_OPS.get(code & 0xF0)
    if op is not None:
        return f"tag error 0x{code & 0x0F:x} during {op}"
    return f"unknown error 0x{code:02x}"


def checksum(frame_without_head: bytes | bytearray) -> int:
    """Low byte of the sum of Type, Command, PL and Parameters."""
    return sum(frame_without_head) & 0xFF


def build_frame(command: int, params: bytes = b"", frame_type: int = TYPE_COMMAND) -> bytes:
    """One frame with its PL, checksum and end byte."""
    if not 0 <= command <= 0xFF or len(params) > 0xFFFF:
        raise ValueError("command or parameter length out of range")
    body = bytes([frame_type, command]) + len(params).to_bytes(2, "big") + params
    return bytes([HEAD]) + body + bytes([checksum(body), END])


def build_single_poll() -> bytes:
    """Single polling (0x22): one inventory; tags come back as notifications."""
    return build_frame(CMD_SINGLE_POLL)


def build_multi_poll(count: int = 10000) -> bytes:
    """Multiple polling (0x27): `count` rounds (0-65535); the 0x22 byte is reserved."""
    if not 0 <= count <= 0xFFFF:
        raise ValueError("poll count must be 0-65535")
    return build_frame(CMD_MULTI_POLL, bytes([0x22]) + count.to_bytes(2, "big"))


def build_stop_multi_poll() -> bytes:
    """Stop multiple polling (0x28)."""
    return build_frame(CMD_STOP_MULTI_POLL)


class M100Parser(HeadScanner):
    """Streaming parser for M100 replies; resynchronises on the next 0xBB after garbage."""

    head = HEAD
    header = 5  # head, type, command, parameter length (2)

    def __init__(self, poll_count: int = 10000) -> None:
        super().__init__()
        self.poll_count = poll_count

    def inventory_command(self) -> bytes:
        """Multiple polling for `poll_count` rounds (send again when the tags stop)."""
        return build_multi_poll(self.poll_count)

    def _length(self, buf: bytearray, pos: int) -> int | None:
        params = (buf[pos + 3] << 8) | buf[pos + 4]
        if buf[pos + 1] > TYPE_NOTIFICATION or params > MAX_PARAMS:
            return None
        return params + 7

    def _intact(self, buf: bytearray, pos: int, end: int) -> bool:
        return buf[end - 1] == END and checksum(buf[pos + 1 : end - 2]) == buf[end - 2]

    def _decode(self, buf: bytearray, pos: int, end: int) -> UhfFrame:
        return _decode(buf[pos + 1], buf[pos + 2], bytes(buf[pos + 5 : end - 2]))


def _decode(frame_type: int, command: int, params: bytes) -> UhfFrame:
    notification = frame_type == TYPE_NOTIFICATION
    if notification and command in (CMD_SINGLE_POLL, CMD_MULTI_POLL) and len(params) >= 5:
        # RSSI (signed dBm), PC, EPC (PL - 5), CRC.
        rssi = params[0] - 256 if params[0] & 0x80 else params[0]
        pc = (params[1] << 8) | params[2]
        return UhfTag(params[3:-2].hex(), 1, rssi, params[0], pc, None, 1)
    if frame_type == TYPE_RESPONSE and command == CMD_ERROR and params:
        code = params[0]
        return UhfError(command, code, error_text(code), no_tag=code == ERROR_NO_TAG)
    return Reply(command, params)
