"""Mettler Toledo MT-SICS balances and weigh modules (protocols.md §2.1)."""
