"""The `storegw` command: run, check, demo, drivers, schema, status.

No command ever prints a Python traceback for a user's mistake: config problems are
`FILE:LINE:COL: path: message` lines and exit status 1; a missing daemon is one sentence
saying what to check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.config import Config
    from gateway.plugins import Registry

DEFAULT_CONFIG = Path("/etc/storegw/storegw.yaml")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="storegw",
        description="Edge gateway for small shops: devices in, MQTT out.",
    )
    p.add_argument("--version", action="version", version=f"storegw {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "-c",
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            help=f"config file (default {DEFAULT_CONFIG})",
        )

    run = sub.add_parser("run", help="run the daemon in the foreground (what systemd starts)")
    with_config(run)
    run.add_argument("--log-format", choices=("text", "json"), help="overrides logging.format")
    run.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), help="overrides logging.level"
    )
    check = sub.add_parser("check", help="validate a config file; exit 0 if valid, 1 if not")
    with_config(check)
    demo = sub.add_parser("demo", help="a whole simulated store on this machine")
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: Ctrl-C)",
    )
    demo.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="warning"
    )
    sub.add_parser("drivers", help="installed drivers and their config fields")
    sub.add_parser("schema", help="the config's JSON Schema (for editors)")
    status = sub.add_parser("status", help="ask the running daemon how it is doing")
    with_config(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    with_config(sub.add_parser("doctor", help="check config, ports, broker, clock, disk, daemon"))
    return p


def _load(path: Path, registry: Registry) -> Config | None:
    from gateway.config import ConfigError, load_config

    try:
        return load_config(path, registry)
    except ConfigError as err:
        for issue in err.issues:
            print(issue, file=sys.stderr)
        n = len(err.issues)
        print(f"{path}: {n} error{'s' if n != 1 else ''}; nothing was changed", file=sys.stderr)
        return None


def _plugin_errors(registry: Registry) -> None:
    for name, error in sorted(registry.errors.items()):
        print(f"warning: driver plug-in {name!r} could not be loaded: {error}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    """`storegw check -c FILE`."""
    from gateway.plugins import discover

    registry = discover()
    _plugin_errors(registry)
    config = _load(args.config, registry)
    if config is None:
        return 1
    print(f"{args.config}: OK ({len(config.devices)} devices)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """`storegw run -c FILE`."""
    from gateway import logs
    from gateway.control import ControlSocketError
    from gateway.daemon import Daemon
    from gateway.plugins import discover

    registry = discover()
    _plugin_errors(registry)
    config = _load(args.config, registry)
    if config is None:
        return 1
    lc = config.logging
    logs.setup(
        args.log_level or lc.level,
        args.log_format or lc.format,
        file=lc.file,
        file_max_size=lc.file_max_size,
        file_count=lc.file_count,
    )

    async def main() -> int:
        return await Daemon(config, registry, config_path=args.config.resolve()).run()

    try:
        return asyncio.run(main())
    except (ControlSocketError, PermissionError) as exc:
        # Start-up problems a technician fixes on the machine: one line, no traceback.
        print(f"storegw: cannot run: {exc}", file=sys.stderr)
        return 1


def cmd_drivers(_: argparse.Namespace) -> int:
    """`storegw drivers`."""
    from gateway.config import describe_driver
    from gateway.plugins import discover

    registry = discover()
    for name in registry.names():
        cls = registry.drivers[name]
        print(f"{name}: {cls.summary}")
        for field, kind, default, description in describe_driver(cls):
            shown = _as_written(kind, default)
            print(f"    {field:<18} {kind:<22} {shown:<12} {description}")
        print()
    for name, error in sorted(registry.errors.items()):
        print(f"{name}: NOT LOADED: {error}")
    return 0


def _as_written(kind: str, default: str) -> str:
    """A default as a technician writes it: `2m` rather than `120.0` for a duration."""
    from gateway.config.types import format_duration, format_size

    try:
        number = float(default)
    except ValueError:
        return default
    if kind.startswith("duration"):
        return format_duration(number)
    if kind.startswith("size"):
        return format_size(int(number))
    return default


def cmd_schema(_: argparse.Namespace) -> int:
    """`storegw schema`."""
    from gateway.config import config_schema
    from gateway.plugins import discover

    print(json.dumps(config_schema(discover()), indent=2))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """`storegw status`."""
    from gateway.control import StatusUnavailable, format_status, query_status, socket_path
    from gateway.plugins import discover

    config = _load(args.config, discover())
    if config is None:
        return 1
    path = socket_path(config, client=True)
    try:
        status = query_status(path)
    except StatusUnavailable as err:
        print(err, file=sys.stderr)
        return 2
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """`storegw doctor -c FILE`."""
    from gateway.doctor import run_doctor

    return run_doctor(args.config)


def cmd_demo(args: argparse.Namespace) -> int:
    """`storegw demo`."""
    from gateway.demo import run_demo

    return run_demo(duration=args.duration, log_level=args.log_level)


COMMANDS = {
    "run": cmd_run,
    "check": cmd_check,
    "demo": cmd_demo,
    "drivers": cmd_drivers,
    "schema": cmd_schema,
    "status": cmd_status,
    "doctor": cmd_doctor,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `storegw schema | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
