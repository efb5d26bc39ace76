"""install.sh / uninstall.sh into a throwaway root: shellcheck, the tree, idempotence, upgrade."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).parents[2] / "systemd"
INSTALL = SYSTEMD / "install.sh"
UNINSTALL = SYSTEMD / "uninstall.sh"


def _run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, timeout=timeout
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_scripts_pass_shellcheck() -> None:
    _run("shellcheck", INSTALL, UNINSTALL)


def test_install_builds_the_tree_and_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _run(INSTALL, "--prefix", root, "--no-venv")
    unit = root / "etc/systemd/system/storegw.service"
    assert unit.read_text() == (SYSTEMD / "storegw.service").read_text()
    config = root / "etc/storegw/storegw.yaml"
    assert config.read_text() == (SYSTEMD.parent / "config/storegw.yaml").read_text()
    assert _mode(config) == 0o640
    assert _mode(root / "etc/storegw") == 0o750
    assert _mode(root / "etc/storegw/credentials") == 0o700  # secrets: root only
    examples = root / "opt/storegw/share/examples"
    assert (examples / "99-storegw-serial.rules").is_file()
    assert (examples / "storegw.yaml").is_file()
    if shutil.which("systemctl"):
        wants = root / "etc/systemd/system/multi-user.target.wants/storegw.service"
        assert wants.is_symlink()
        assert str(wants.readlink()) == "/etc/systemd/system/storegw.service"
    # Run again (the upgrade path): the technician's config survives, nothing fails.
    config.write_text(config.read_text().replace("shop-0001", "shop-0042"))
    again = _run(INSTALL, "--prefix", root, "--no-venv")
    assert "kept your" in again.stdout
    assert "shop-0042" in config.read_text()


def test_uninstall_keeps_data_unless_purged(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _run(INSTALL, "--prefix", root, "--no-venv")
    outbox = root / "var/lib/storegw/outbox.db"
    outbox.parent.mkdir(parents=True)
    outbox.write_bytes(b"undelivered sales")
    _run(UNINSTALL, "--prefix", root)
    assert not (root / "etc/systemd/system/storegw.service").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/storegw.service").exists()
    assert not (root / "opt/storegw").exists()
    assert outbox.read_bytes() == b"undelivered sales"
    assert (root / "etc/storegw/storegw.yaml").exists()
    _run(UNINSTALL, "--prefix", root)  # idempotent
    _run(UNINSTALL, "--prefix", root, "--purge")
    assert not (root / "var/lib/storegw").exists()
    assert not (root / "etc/storegw").exists()


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(INSTALL), "--prefix", str(tmp_path), "--frobnicate"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2 and "--frobnicate" in run.stderr


@pytest.mark.slow
def test_install_with_the_virtualenv_runs_storegw_check(tmp_path: Path) -> None:
    """Once for real: a virtualenv from the source tree, then `storegw check` on the config."""
    python = shutil.which("python3")
    assert python is not None
    root = tmp_path / "root"
    run = _run(INSTALL, "--prefix", root, "--python", python, timeout=300)
    assert f"{root}/etc/storegw/storegw.yaml: OK (0 devices)" in run.stdout
    version = _run(root / "opt/storegw/bin/storegw", "--version")
    assert version.stdout.startswith("storegw ")
    # The upgrade path reuses the virtualenv.
    again = _run(INSTALL, "--prefix", root, "--python", python, timeout=300)
    assert "created the virtualenv" not in again.stdout
