"""Modbus RTU/TCP meters: register model as data, request coalescing and device profiles.

The IO-free layers live here now (`registers`, `coalesce`, `profiles`); the driver class,
the per-link scheduler and the simulator land with the IO side of issue 4.
"""
