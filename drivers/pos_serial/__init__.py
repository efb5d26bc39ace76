"""POS capture from a till's serial stream: sale lines, ESC/POS receipts, pole displays."""

from drivers.pos_serial.driver import PosSerial

__all__ = ["PosSerial"]
