"""DL/T 645-2007 electricity meters on RS-485: frame codec, data identifiers, stream parser.

IO-free layers: `protocol`, `identifiers`, `parser`; the driver (`driver`) reads through
the gateway's shared links; `simulator` serves meters on a pseudo-terminal.
"""

from drivers.dlt645.driver import Dlt645

__all__ = ["Dlt645"]
