"""Pricer Plaza: price labels through a commercial ESL server's REST API (protocols.md §5.2)."""

from drivers.pricer.driver import Pricer

__all__ = ["Pricer"]
