"""The `fleet` section: remote configuration, diagnostics and device control (issue 11).

A section of its own (contract.md: a new top-level section needs a reason in docs/): these
settings belong to neither the command channel (`commands`: size, replay, signatures) nor
the daemon itself; docs/fleet.md "Settings" says so.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from gateway.config.fields import As
from gateway.config.sections import Section
from gateway.config.types import duration, size


class FleetConfig(Section):
    """Remote `config` / `diag` / `device` commands."""

    probation: Annotated[float, As(duration("1s", "1h"))] = Field(
        180.0,
        description=(
            "After a remote config change, how long the uplink must be up and the core "
            "services healthy before the change is confirmed; else it is rolled back."
        ),
    )
    keep_versions: int = Field(
        10, ge=2, le=1000, description="Config versions kept in '<state_dir>/config/'."
    )
    diag_log_lines: int = Field(
        200, ge=0, le=10_000, description="Last log lines kept in memory for 'diag' reports."
    )
    diag_max_size: Annotated[int, As(size("10KB", "16MB"))] = Field(
        1_000_000, description="Largest 'diag' report; the oldest log lines are left out first."
    )
