"""OpenEPaperLink access point: price labels over the AP's local HTTP API (protocols.md §5.1)."""

from drivers.openepaperlink.driver import OpenEPaperLink

__all__ = ["OpenEPaperLink"]
