"""Config versions on disk: `<state_dir>/config/`, with hashes, origins and probation marks.

Layout: one `NNNNNN.yaml` per version (the exact text applied) and `index.json` listing
every kept version (`n`, `sha256`, `origin`, `applied_at`, `state`) plus the hash of the
local file (`-c FILE`) the last time the daemon read it. Every write is atomic (temporary
file, fsync, rename, fsync of the directory) so a power cut leaves the old or the new
index, never half of one.

Which copy wins at start (docs/fleet.md "Which copy wins"): the newest change. When the
local file is unchanged since the store last saw it, the latest *confirmed* version wins
(a remote change survives a restart); when the local file changed (a technician edited it
on site), the file is newer and wins, and is recorded as a version with origin `file`.
A version still `tentative` at start means the daemon died during its probation: it is
marked `failed` and the last confirmed version is used (issue 11: a crash during probation
comes back on the previous config).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from gateway.config import ConfigError, parse_config

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.config import Config
    from gateway.plugins import Registry

log = logging.getLogger(__name__)

DEFAULT_KEEP = 10


class VersionState(StrEnum):
    """Where a stored version stands."""

    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Version:
    """One stored config version."""

    n: int
    sha256: str
    origin: str
    applied_at: float
    state: VersionState


def sha256_text(text: str) -> str:
    """The hex SHA-256 of a config text as UTF-8 (the `config_hash` the cloud sees)."""
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ConfigStore:
    """The kept config versions of one gateway (blocking file IO: call via to_thread)."""

    def __init__(self, directory: Path, keep: int = DEFAULT_KEEP) -> None:
        self.dir = directory
        self.keep = keep
        self.versions: list[Version] = []
        self.file_sha256: str | None = None

    def load(self) -> None:
        """Read the index (an absent directory is an empty store)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        index = self.dir / "index.json"
        if not index.exists():
            return
        data = json.loads(index.read_text(encoding="utf-8"))
        self.file_sha256 = data.get("file_sha256")
        self.versions = [
            Version(v["n"], v["sha256"], v["origin"], v["applied_at"], VersionState(v["state"]))
            for v in data.get("versions", [])
        ]

    def _save(self) -> None:
        body: dict[str, Any] = {
            "file_sha256": self.file_sha256,
            "versions": [asdict(v) for v in self.versions],
        }
        write_atomic(self.dir / "index.json", json.dumps(body, indent=1).encode())

    def _path(self, n: int) -> Path:
        return self.dir / f"{n:06d}.yaml"

    def add(self, text: str, origin: str, state: VersionState) -> Version:
        """Store `text` as a new version (the text first, then the index that names it)."""
        n = max((v.n for v in self.versions), default=0) + 1
        write_atomic(self._path(n), text.encode())
        version = Version(n, sha256_text(text), origin, time.time(), state)
        self.versions.append(version)
        self._prune()
        self._save()
        return version

    def mark(self, n: int, state: VersionState) -> None:
        """Change the state of version `n` (confirm it, or record why it was left)."""
        self.versions = [replace(v, state=state) if v.n == n else v for v in self.versions]
        self._save()

    def read(self, n: int) -> str:
        """The text of version `n`."""
        return self._path(n).read_text(encoding="utf-8")

    def get(self, n: int) -> Version | None:
        """Version `n`, if kept."""
        return next((v for v in self.versions if v.n == n), None)

    def confirmed(self) -> Version | None:
        """The newest confirmed version: the one the daemon starts from."""
        return next((v for v in reversed(self.versions) if v.state is VersionState.CONFIRMED), None)

    def _prune(self) -> None:
        # The newest confirmed version is never pruned: it is what a restart comes back on.
        keep_n = {v.n for v in self.versions[-self.keep :]}
        current = self.confirmed()
        if current is not None:
            keep_n.add(current.n)
        for v in self.versions:
            if v.n not in keep_n:
                with contextlib.suppress(FileNotFoundError):
                    self._path(v.n).unlink()
        self.versions = [v for v in self.versions if v.n in keep_n]

    def startup(self, file_text: str) -> tuple[Version, list[Version]]:
        """Pick the version to start from; returns it and the versions cut off by a crash."""
        self.load()
        interrupted = [v for v in self.versions if v.state is VersionState.TENTATIVE]
        for v in interrupted:
            self.mark(v.n, VersionState.FAILED)
        file_hash = sha256_text(file_text)
        current = self.confirmed()
        if current is None or self.file_sha256 != file_hash:
            current = self.add(file_text, "file", VersionState.CONFIRMED)
            self.file_sha256 = file_hash
            self._save()
        return current, interrupted

    def record_file(self, file_text: str) -> Version:
        """A hand edit applied by SIGHUP: a confirmed version with origin `file`."""
        self.file_sha256 = sha256_text(file_text)
        return self.add(file_text, "file", VersionState.CONFIRMED)


@dataclass(frozen=True, slots=True)
class RunningConfig:
    """The config the daemon runs: its text, hash, origin (`file` / `command:<id>`), version."""

    text: str
    sha256: str
    origin: str
    applied_at: float
    version: int | None


def start_config(
    file_config: Config, path: Path, registry: Registry
) -> tuple[Config, RunningConfig, ConfigStore, list[Version]]:
    """The config to start from (see the module docstring), and the versions a crash cut off.

    A stored version that no longer validates (say, a driver was uninstalled) is logged
    and the local file used instead: starting beats a perfect history.
    """
    text = path.read_text(encoding="utf-8")
    store = ConfigStore(file_config.gateway.state_dir / "config", file_config.fleet.keep_versions)
    version, interrupted = store.startup(text)
    running = RunningConfig(text, sha256_text(text), "file", version.applied_at, version.n)
    if version.origin == "file" and version.sha256 == running.sha256:
        return file_config, running, store, interrupted
    stored = store.read(version.n)
    try:
        config = parse_config(stored, "remote", registry, base_dir=path.parent.absolute())
    except ConfigError as err:
        for issue in err.issues:
            log.error("Stored config version %d is not usable: %s", version.n, issue)
        version = store.record_file(text)
        return file_config, replace(running, version=version.n), store, interrupted
    log.info("Starting from stored config version %d (%s)", version.n, version.origin)
    running = RunningConfig(stored, version.sha256, version.origin, version.applied_at, version.n)
    return config, running, store, interrupted
