"""Serial UHF RFID readers: the R2000 "0xA0" and M100/QM100 "0xBB" module protocols."""

from drivers.uhf_serial.driver import UhfSerial

__all__ = ["UhfSerial"]
