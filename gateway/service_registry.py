"""Which optional services the daemon builds (in this order), each from its own module.

Each service adds two lines of its own below — an import of its `build(ctx) -> Service |
None` and an append — so that services can be added independently of one another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.services import Service, ServiceContext

FACTORIES: list[Callable[[ServiceContext], Service | None]] = []
from gateway.clock import build as build_clock

FACTORIES.append(build_clock)
from gateway.systemd import build as build_systemd

FACTORIES.append(build_systemd)
from gateway.presence import build as build_presence

FACTORIES.append(build_presence)
from gateway.inventory import build as build_inventory

FACTORIES.append(build_inventory)

from gateway.pricing import build as build_pricing

FACTORIES.append(build_pricing)
from gateway.inference import build as build_inference

FACTORIES.append(build_inference)
from gateway.fleet import build as build_fleet

FACTORIES.append(build_fleet)
