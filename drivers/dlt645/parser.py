"""Streaming DL/T 645 frame parser: bytes in, complete frames out, never raises (IO-free).

An RS-485 line delivers frames split across reads, glued together, prefixed with FE
wake-up bytes, and mixed with garbage (bus turnaround glitches, another meter's echo).
`FrameParser.feed` takes whatever arrived and returns the frames that are complete,
resynchronising on the next 0x68 after anything that does not check out.
"""

from __future__ import annotations

from drivers.dlt645.protocol import (
    END,
    HEADER_LEN,
    START,
    WAKE_UP,
    Frame,
    checksum,
    frame_from_body,
)


class FrameParser:
    """Feed bytes, get frames; counts what it had to throw away."""

    __slots__ = ("_buf", "bad_checksums", "discarded", "frames", "wake_up_bytes")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0
        """Complete, valid frames returned so far."""
        self.discarded = 0
        """Bytes thrown away: garbage, false starts, corrupted frames (FE excluded)."""
        self.bad_checksums = 0
        """Well-shaped frames whose checksum did not match."""
        self.wake_up_bytes = 0
        """FE preamble bytes skipped (expected, not an error)."""

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget a partial frame (after a transaction timed out); counters stay."""
        self.discarded += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every frame they complete, in order."""
        self._buf += data
        out: list[Frame] = []
        while (frame := self._next()) is not None:
            out.append(frame)
        return out

    def _skip(self, count: int) -> None:
        """Drop `count` leading bytes, counting FE wake-ups apart from garbage."""
        wake = self._buf[:count].count(WAKE_UP)
        self.wake_up_bytes += wake
        self.discarded += count - wake
        del self._buf[:count]

    def _next(self) -> Frame | None:
        """The next complete frame in the buffer, or None when more bytes are needed."""
        buf = self._buf
        while True:
            start = buf.find(START)
            if start < 0:
                self._skip(len(buf))
                return None
            self._skip(start)
            if len(buf) < HEADER_LEN:
                return None
            if buf[7] != START:
                self._skip(1)  # a stray 0x68: resynchronise on the next one
                continue
            total = HEADER_LEN + buf[9] + 2
            if len(buf) < total:
                # A false start (garbage that happens to contain 68 .. 68) claims bytes
                # that have not arrived yet; on a quiet bus they never will, and the
                # meter's real reply would sit behind it until the transaction timed
                # out. So take a complete, valid frame further on when there is one.
                later = self._complete_frame_after_start()
                if later is None:
                    return None
                self._skip(later)
                continue
            if buf[total - 1] != END:
                self._skip(1)
                continue
            if checksum(buf[: total - 2]) != buf[total - 2]:
                self.bad_checksums += 1
                self._skip(1)
                continue
            frame = frame_from_body(bytes(buf[:total]))
            del buf[:total]
            self.frames += 1
            return frame

    def _complete_frame_after_start(self) -> int | None:
        """Offset of the first complete, valid frame after the buffer's first byte."""
        buf = self._buf
        at = buf.find(START, 1)
        while at >= 0 and len(buf) - at >= HEADER_LEN + 2:
            total = HEADER_LEN + buf[at + 9] + 2
            if (
                buf[at + 7] == START
                and len(buf) - at >= total
                and buf[at + total - 1] == END
                and checksum(buf[at : at + total - 2]) == buf[at + total - 2]
            ):
                return at
            at = buf.find(START, at + 1)
        return None
