"""Modbus RTU/TCP meters: register model as data, request coalescing, device profiles.

IO-free layers: `registers`, `coalesce`, `profiles`, `protocol`; the driver (`driver`)
polls through the gateway's shared links; `simulator` serves meters for tests and demos.
"""

from drivers.modbus.driver import Modbus

__all__ = ["Modbus"]
