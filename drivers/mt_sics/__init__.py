"""Mettler Toledo MT-SICS balances and weigh modules (protocols.md §2.1)."""

from drivers.mt_sics.driver import MtSics

__all__ = ["MtSics"]
