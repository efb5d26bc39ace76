"""Driver discovery: the `storegw.drivers` entry-point group, read once at start-up.

Built-in drivers are registered in this repo's `pyproject.toml` exactly like third-party
ones, so the third-party path is the tested path. A plug-in that fails to load becomes a
named load error (shown by `storegw drivers` and `storegw check`); it never stops the
others from loading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

from gateway.driver import Driver

GROUP = "storegw.drivers"


@dataclass(frozen=True, slots=True)
class Registry:
    """Installed drivers by name, and the plug-ins that could not be loaded."""

    drivers: dict[str, type[Driver]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Installed driver names, sorted."""
        return sorted(self.drivers)


def discover() -> Registry:
    """Load every entry point of the group; collect failures instead of raising."""
    registry = Registry()
    for ep in entry_points(group=GROUP):
        if ep.name in registry.drivers or ep.name in registry.errors:
            registry.errors[ep.name] = f"two plug-ins claim the driver name {ep.name!r}"
            registry.drivers.pop(ep.name, None)
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plug-in must not take the others down
            registry.errors[ep.name] = f"cannot load {ep.value!r}: {type(exc).__name__}: {exc}"
            continue
        if not (isinstance(cls, type) and issubclass(cls, Driver)):
            registry.errors[ep.name] = f"{ep.value!r} is not a storegw Driver class"
        elif cls.name != ep.name:
            registry.errors[ep.name] = (
                f"{ep.value!r} calls itself {cls.name!r} but is registered as {ep.name!r}"
            )
        else:
            registry.drivers[ep.name] = cls
    return registry
