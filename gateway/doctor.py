"""`storegw doctor -c FILE`: every check a technician needs on site, one verdict a line.

Checks, in order: the config file; each serial port the config names (exists, is a
terminal, the service user `storegw` may open it); the broker (`gateway.doctor_broker`);
the system clock (`gateway.clock`); free disk for the outbox; the running daemon through
its status socket. Each line says OK, WARN or FAIL with the fix; the exit status is 1 when
any check failed, else 0. No check ever raises to the user: a bug in one becomes a FAIL
line and the others still run.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.clock import ClockSync, clock_sync
from gateway.config import ConfigError, load_config
from gateway.control import SOCKET_NAME, StatusUnavailable, query_status, socket_path
from gateway.doctor_broker import broker_verdicts
from gateway.doctor_verdict import Level, Verdict
from gateway.plugins import discover

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from gateway.config import Config
    from gateway.plugins import Registry

SERVICE_USER = "storegw"
SERVICE_GROUPS = ("dialout",)  # the unit's SupplementaryGroups=
RUNTIME_DIR = Path("/run/storegw")  # the unit's RuntimeDirectory=
CREDENTIALS_DIR = Path("/etc/storegw/credentials")  # the unit's LoadCredential= source


@contextlib.contextmanager
def config_env(env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The environment to load the config with outside systemd.

    The unit hands secrets in as `$CREDENTIALS_DIRECTORY/storegw_<file>`, copied from
    /etc/storegw/credentials (its `LoadCredential=storegw:DIR`); run by hand, the variable
    points at a temporary directory of such links, so `${CREDENTIALS_DIRECTORY}`
    references in the config resolve as they will under systemd.
    """
    out = dict(env)
    if "CREDENTIALS_DIRECTORY" in out or not CREDENTIALS_DIR.is_dir():
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="storegw-credentials-") as tmp:
        for item in sorted(CREDENTIALS_DIR.iterdir()):
            (Path(tmp) / f"storegw_{item.name}").symlink_to(item)
        out["CREDENTIALS_DIRECTORY"] = tmp
        yield out


def config_verdicts(path: Path, registry: Registry, env: Mapping[str, str]) -> list[Verdict]:
    """Whether the file loads, plus plug-in load errors and inline secrets."""
    out = [
        Verdict(Level.WARN, "config", f"driver plug-in {name!r} not loaded: {err}", "reinstall")
        for name, err in sorted(registry.errors.items())
    ]
    try:
        config = load_config(path, registry, env=env)
    except ConfigError as err:
        out += [Verdict(Level.FAIL, "config", str(issue)) for issue in err.issues]
        out.append(
            Verdict(
                Level.FAIL,
                "config",
                f"{path}: {len(err.issues)} error(s)",
                "edit the file at each FILE:LINE:COL above, then `storegw check -c FILE`",
            )
        )
        return out
    out.append(Verdict(Level.OK, "config", f"{path}: valid, {len(config.devices)} devices"))
    out += [
        Verdict(
            Level.WARN,
            "config",
            f"{secret} is written in the file itself",
            "move it to /etc/storegw/credentials and use the matching *_file key",
        )
        for secret in config.inline_secrets
    ]
    return out


def serial_ports(config: Config) -> Iterator[tuple[str, str]]:
    """(owner, path) of every `/dev/...` path in the devices' and links' settings."""
    links = getattr(config, "links", None)
    for link in getattr(links, "root", links) or []:
        # A link's `path` is a serial port by definition, wherever it lives.
        path = getattr(link, "path", None)
        if path is not None:
            yield f"link {link.id}", str(path)
    for device in config.devices:
        for path in sorted(set(_dev_paths(device.model_dump(mode="json")))):
            yield f"device {device.id}", path


def _dev_paths(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        path = value.removeprefix("serial://")
        if path.startswith("/dev/"):
            yield path
    elif isinstance(value, dict):
        for item in value.values():
            yield from _dev_paths(item)
    elif isinstance(value, list):
        for item in value:
            yield from _dev_paths(item)


def serial_verdicts(config: Config, user: str = SERVICE_USER) -> list[Verdict]:
    """Each serial port: exists, is a terminal, readable and writable by the service user."""
    ports = list(serial_ports(config))
    if not ports:
        return [Verdict(Level.OK, "serial", "no serial ports in the config")]
    ids = _user_ids(user)
    return [_port_verdict(owner, path, ids, user) for owner, path in ports]


def _user_ids(user: str) -> tuple[int, set[int]] | None:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    gids = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    for name in SERVICE_GROUPS:
        try:
            gids.add(grp.getgrnam(name).gr_gid)
        except KeyError:
            continue
    return entry.pw_uid, gids


def _port_verdict(owner: str, path: str, ids: tuple[int, set[int]] | None, user: str) -> Verdict:
    where = f"{owner}: {path}"
    port = Path(path)
    try:
        st = port.stat()
    except FileNotFoundError:
        hint = "plug the adapter in; prefer the stable names in /dev/serial/by-id/ (`ls -l`)"
        if port.is_symlink():
            hint = f"the link points nowhere ({port.readlink()}); " + hint
        return Verdict(Level.FAIL, "serial", f"{where} does not exist", hint)
    except OSError as exc:
        return Verdict(Level.FAIL, "serial", f"{where}: {exc.strerror}", "check the path")
    if not stat.S_ISCHR(st.st_mode):
        return Verdict(
            Level.FAIL, "serial", f"{where} is not a serial device", "name the tty device"
        )
    if ids is None:
        ok = os.access(path, os.R_OK | os.W_OK)
        who = f"this user (the service user {user!r} does not exist: run install.sh)"
    else:
        uid, gids = ids
        if st.st_uid == uid:
            bits = (st.st_mode >> 6) & 0o6
        elif st.st_gid in gids:
            bits = (st.st_mode >> 3) & 0o6
        else:
            bits = st.st_mode & 0o6
        ok = bits == 0o6
        who = f"user {user!r}"
    if not ok:
        group = _group_name(st.st_gid)
        return Verdict(
            Level.FAIL,
            "serial",
            f"{where} cannot be opened read-write by {who} "
            f"(mode {stat.filemode(st.st_mode)}, group {group})",
            "install systemd/99-storegw-serial.rules (udev) or add the user to group " + group,
        )
    return Verdict(Level.OK, "serial", f"{where} is usable by {who}")


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def clock_verdicts() -> list[Verdict]:
    """Whether the system clock is synchronised (a Pi has no RTC)."""
    state, source = clock_sync()
    if state is ClockSync.SYNCED:
        return [Verdict(Level.OK, "clock", f"the system clock is synchronised ({source})")]
    if state is ClockSync.UNSYNCED:
        return [
            Verdict(
                Level.WARN,
                "clock",
                f"the system clock is not synchronised ({source}); payloads are flagged "
                '"clock_synced": false',
                "allow NTP (UDP 123) out, check `timedatectl timesync-status`",
            )
        ]
    text = f"cannot tell whether the system clock is synchronised ({source})"
    return [Verdict(Level.WARN, "clock", text, "check `timedatectl`")]


def disk_verdicts(config: Config) -> list[Verdict]:
    """Free space where the outbox lives, against `outbox.min_free_disk` and `max_size`."""
    path = config.outbox.path.parent
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    low, cap = config.outbox.min_free_disk, config.outbox.max_size
    text = f"{free / 1e6:,.0f} MB free for the outbox in {path}"
    if free < low:
        fix = "free disk space (old logs: `journalctl --vacuum-size=50M`) or move outbox.path"
        return [Verdict(Level.FAIL, "disk", f"{text}, below outbox.min_free_disk", fix)]
    if free < low + cap:
        fix = "lower outbox.max_size or free disk space"
        return [Verdict(Level.WARN, "disk", f"{text}: the outbox may not reach max_size", fix)]
    return [Verdict(Level.OK, "disk", text)]


def daemon_verdicts(config: Config, env: Mapping[str, str]) -> list[Verdict]:
    """Whether a daemon answers on a status socket (systemd's, then the state dir's)."""
    candidates = [socket_path(config, env), RUNTIME_DIR / SOCKET_NAME]
    candidates.append(config.gateway.state_dir / SOCKET_NAME)
    tried: list[str] = []
    for path in dict.fromkeys(candidates):
        if not path.exists():
            tried.append(str(path))
            continue
        try:
            status = query_status(path)
        except StatusUnavailable as exc:
            return [Verdict(Level.FAIL, "daemon", str(exc), "`journalctl -u storegw -e`")]
        return _status_verdicts(path, status)
    return [
        Verdict(
            Level.WARN,
            "daemon",
            f"storegw is not running (no status socket at {' or '.join(tried)})",
            "`systemctl start storegw`, then `journalctl -u storegw -e` if it stops",
        )
    ]


def _status_verdicts(path: Path, status: dict[str, Any]) -> list[Verdict]:
    gw = status.get("gateway") or {}
    up = status.get("uplink")
    uplink = f"uplink {up.get('state')}" if isinstance(up, dict) else "no uplink"
    text = f"storegw runs (pid {gw.get('pid')}, up {gw.get('uptime_s')} s, {uplink}) on {path}"
    failed = [
        row
        for row in status.get("devices") or []
        if isinstance(row, dict) and row.get("state") == "failed"
    ]
    return [Verdict(Level.OK, "daemon", text)] + [
        Verdict(
            Level.WARN,
            "device",
            f"{row.get('id')} ({row.get('driver')}) failed: {row.get('last_error')}",
            "see the driver's README, Troubleshooting",
        )
        for row in failed
    ]


def diagnose(path: Path, registry: Registry, env: Mapping[str, str]) -> list[Verdict]:
    """Every verdict for the config at `path`, in order; never raises."""
    verdicts = _guard("config", lambda: config_verdicts(path, registry, env))
    config: Config | None = None
    if not any(v.level is Level.FAIL for v in verdicts):
        config = load_config(path, registry, env=env)
    checks: list[tuple[str, Callable[[], list[Verdict]]]] = [("clock", clock_verdicts)]
    if config is not None:
        cfg = config
        checks = [
            ("serial", lambda: serial_verdicts(cfg)),
            ("broker", lambda: broker_verdicts(cfg.mqtt)),
            *checks,
            ("disk", lambda: disk_verdicts(cfg)),
            ("daemon", lambda: daemon_verdicts(cfg, env)),
        ]
    for topic, check in checks:
        verdicts += _guard(topic, check)
    return verdicts


def _guard(topic: str, check: Callable[[], list[Verdict]]) -> list[Verdict]:
    try:
        return check()
    except Exception as exc:  # a doctor that crashes helps nobody: report and go on
        return [Verdict(Level.FAIL, topic, f"the check itself failed: {exc!r}", "report a bug")]


def run_doctor(path: Path, registry: Registry | None = None) -> int:
    """Print every verdict; 1 when any failed, else 0."""
    with config_env(os.environ) as env:
        verdicts = diagnose(path, registry or discover(), env)
    for verdict in verdicts:
        print(verdict.line())  # noqa: T201 - the command's output
    failed = sum(v.level is Level.FAIL for v in verdicts)
    warned = sum(v.level is Level.WARN for v in verdicts)
    print(  # noqa: T201
        f"{'FAILED' if failed else 'PASSED'}: {failed} failed, {warned} warnings",
        file=sys.stdout,
    )
    return 1 if failed else 0
