"""Toledo continuous output from scale indicators (protocols.md §2.2)."""

from drivers.toledo.driver import Toledo

__all__ = ["Toledo"]
