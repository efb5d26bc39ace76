"""LLRP fixed UHF RFID readers: the driver (entry point `llrp`) on an IO-free codec."""

from drivers.llrp.driver import LlrpDriver

__all__ = ["LlrpDriver"]
