#!/usr/bin/env bash
# Install or upgrade storegw as a systemd service (idempotent: run it again to upgrade).
#
#   sudo systemd/install.sh                      from this source tree
#   sudo systemd/install.sh --wheel storegw-0.1.0-py3-none-any.whl
#   sudo systemd/install.sh --wheels ./wheelhouse   offline: every dependency from DIR
#   systemd/install.sh --prefix /tmp/root        into a throwaway root (tests, packaging)
#
# What it does: creates the system user `storegw` (in group dialout), a virtualenv in
# /opt/storegw with every dependency (nothing is downloaded at run time), the example
# config /etc/storegw/storegw.yaml (never overwritten), /etc/storegw/credentials for
# secrets, the unit /etc/systemd/system/storegw.service (enabled), then runs
# `storegw check` on the config. A running service is restarted (the upgrade path).
set -euo pipefail

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Options:
  --prefix DIR     install below DIR instead of / (also: DESTDIR=DIR); touches no users
                   and starts nothing
  --wheel FILE     install storegw from this wheel instead of the source tree
  --wheels DIR     take every package from DIR (pip --no-index --find-links DIR)
  --python PY      the Python (>= 3.11) for the virtualenv (default python3)
  --no-venv        skip creating/updating the virtualenv (config, unit and user only)
  --no-start       enable the unit but do not (re)start it
  -h, --help       this text
EOF
}

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
root=${DESTDIR:-}
wheel=""
wheels=""
python=python3
make_venv=1
start=1

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) root=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) root=${1#*=}; shift ;;
        --wheel) wheel=${2:?--wheel needs a file}; shift 2 ;;
        --wheels) wheels=${2:?--wheels needs a directory}; shift 2 ;;
        --python) python=${2:?--python needs an interpreter}; shift 2 ;;
        --no-venv) make_venv=0; shift ;;
        --no-start) start=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

root=${root%/}
if [ -n "$root" ]; then
    mkdir -p "$root"
    root=$(cd "$root" && pwd)
fi
opt=$root/opt/storegw
etc=$root/etc/storegw
unitdir=$root/etc/systemd/system
on_host=0
[ -z "$root" ] && on_host=1

say() { printf 'storegw install: %s\n' "$*"; }
die() { printf 'storegw install: %s\n' "$*" >&2; exit 1; }

if [ "$on_host" = 1 ] && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo), or give --prefix DIR to install into a directory"
fi

# 1. The service user: no login, no home of its own beyond the state directory.
if [ "$on_host" = 1 ]; then
    if ! getent group storegw >/dev/null; then
        groupadd --system storegw
    fi
    if ! id storegw >/dev/null 2>&1; then
        useradd --system --gid storegw --groups dialout --home-dir /var/lib/storegw \
            --no-create-home --shell /usr/sbin/nologin --comment "storegw gateway" storegw
        say "created the system user storegw (groups: storegw, dialout)"
    else
        usermod --append --groups dialout storegw
    fi
else
    say "prefix $root: the user storegw is not created (do it on the target)"
fi

# 2. The virtualenv: everything the daemon imports is installed now, nothing later.
if [ "$make_venv" = 1 ]; then
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$python is older than 3.11: install python3.11 or newer (see docs/install.md)"
    if [ ! -x "$opt/bin/python" ]; then
        "$python" -m venv "$opt" || die "creating the virtualenv failed: apt-get install python3-venv"
        say "created the virtualenv $opt"
    fi
    pip=("$opt/bin/python" -m pip --disable-pip-version-check --no-input --quiet)
    offline=()
    [ -n "$wheels" ] && offline=(--no-index --find-links "$wheels")
    target=$src
    [ -n "$wheel" ] && target=$wheel
    "${pip[@]}" install "${offline[@]}" --upgrade "$target"
    say "installed $("$opt/bin/storegw" --version) into $opt"
fi

# 3. Files: docs and examples under /opt, config and credentials under /etc.
install -d -m 0755 "$opt/share/doc" "$opt/share/examples"
for doc in "$src"/docs/install.md "$src"/docs/troubleshooting.md; do
    [ -f "$doc" ] && install -m 0644 "$doc" "$opt/share/doc/"
done
install -m 0644 "$here/99-storegw-serial.rules" "$opt/share/examples/"
install -m 0644 "$src/config/storegw.yaml" "$opt/share/examples/storegw.yaml"

install -d -m 0750 "$etc"
install -d -m 0700 "$etc/credentials"
if [ -e "$etc/storegw.yaml" ]; then
    say "kept your $etc/storegw.yaml (the new example is $opt/share/examples/storegw.yaml)"
else
    install -m 0640 "$src/config/storegw.yaml" "$etc/storegw.yaml"
    say "wrote the example config $etc/storegw.yaml: set gateway.store, gateway.id and mqtt"
fi
if [ "$on_host" = 1 ]; then
    chgrp storegw "$etc" "$etc/storegw.yaml"
fi

# 4. The unit, enabled at boot. `systemctl --root` only makes the symlinks.
install -d -m 0755 "$unitdir"
install -m 0644 "$here/storegw.service" "$unitdir/storegw.service"
if command -v systemctl >/dev/null; then
    if [ "$on_host" = 1 ]; then
        if [ -d /run/systemd/system ]; then
            systemctl daemon-reload
        fi
        systemctl enable storegw.service >/dev/null 2>&1 ||
            systemctl --root=/ enable storegw.service
    else
        # In a bare prefix systemctl warns that multi-user.target is missing: expected.
        systemctl --root="$root" enable storegw.service >/dev/null 2>&1 ||
            die "systemctl --root=$root enable storegw.service failed"
    fi
    say "enabled storegw.service"
else
    say "no systemctl here: enable storegw.service on the target"
fi

# 5. Check the config as the daemon will load it (secrets as systemd will hand them in).
if [ -x "$opt/bin/storegw" ]; then
    creds=$(mktemp -d)
    trap 'rm -rf "$creds"' EXIT
    for f in "$etc/credentials"/*; do
        [ -f "$f" ] && ln -s "$f" "$creds/storegw_$(basename "$f")"
    done
    if ! CREDENTIALS_DIRECTORY=$creds "$opt/bin/storegw" check -c "$etc/storegw.yaml"; then
        die "fix $etc/storegw.yaml, then run this script again (or: storegw doctor -c FILE)"
    fi
else
    say "no $opt/bin/storegw yet: skipped 'storegw check'"
fi

# 6. Upgrade: a running daemon is restarted on the new code; a new install waits for you.
if [ "$on_host" = 1 ] && [ "$start" = 1 ] && [ -d /run/systemd/system ]; then
    if systemctl is-active --quiet storegw.service; then
        systemctl restart storegw.service
        say "restarted storegw.service on the new version"
    else
        say "start it with: systemctl start storegw   (logs: journalctl -u storegw -f)"
    fi
fi
say "done; diagnose with: $opt/bin/storegw doctor -c /etc/storegw/storegw.yaml"
