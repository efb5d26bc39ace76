#!/usr/bin/env bash
# Remove storegw: the service, the unit and /opt/storegw. Idempotent.
#
#   sudo systemd/uninstall.sh            keeps /etc/storegw, /var/lib/storegw (the outbox:
#                                        undelivered sales!), /var/log/storegw and the user
#   sudo systemd/uninstall.sh --purge    removes those as well
#   systemd/uninstall.sh --prefix DIR    works below DIR instead of /
set -euo pipefail

root=${DESTDIR:-}
purge=0
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) root=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) root=${1#*=}; shift ;;
        --purge) purge=1; shift ;;
        -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "uninstall.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
root=${root%/}
on_host=0
[ -z "$root" ] && on_host=1
say() { printf 'storegw uninstall: %s\n' "$*"; }

if [ "$on_host" = 1 ] && [ "$(id -u)" != 0 ]; then
    echo "storegw uninstall: run as root (sudo), or give --prefix DIR" >&2
    exit 1
fi

if command -v systemctl >/dev/null; then
    if [ "$on_host" = 1 ]; then
        if [ -d /run/systemd/system ]; then
            systemctl disable --now storegw.service >/dev/null 2>&1 || true
        else
            systemctl --root=/ disable storegw.service >/dev/null 2>&1 || true
        fi
    elif [ -e "$root/etc/systemd/system/storegw.service" ]; then
        systemctl --root="$root" disable storegw.service >/dev/null 2>&1 || true
    fi
fi
rm -f "$root/etc/systemd/system/storegw.service"
rm -f "$root/etc/systemd/system/multi-user.target.wants/storegw.service"
if [ "$on_host" = 1 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
rm -rf "$root/opt/storegw"
say "removed the service and /opt/storegw"

if [ "$purge" = 1 ]; then
    rm -rf "$root/etc/storegw" "$root/var/lib/storegw" "$root/var/log/storegw"
    rm -rf "$root/etc/systemd/system/storegw.service.d"
    if [ "$on_host" = 1 ] && id storegw >/dev/null 2>&1; then
        userdel storegw
        getent group storegw >/dev/null && groupdel storegw
    fi
    say "purged the config, the state (outbox), the logs and the user"
else
    say "kept $root/etc/storegw and $root/var/lib/storegw (the outbox); --purge removes them"
fi
