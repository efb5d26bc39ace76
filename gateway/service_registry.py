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
