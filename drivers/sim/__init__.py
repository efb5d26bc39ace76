"""Simulated devices (`sim_meter`, `sim_pos`) for `storegw demo` and the tests."""

from drivers.sim.driver import SimMeter, SimPos

__all__ = ["SimMeter", "SimPos"]
