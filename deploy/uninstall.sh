#!/usr/bin/env bash
# uninstall.sh: stops and removes one hiddify-sync daemon installed by
# install.sh.
#
#   uninstall.sh hub|reporter [--purge] [--root DIR] [--no-systemctl]
#
#   --purge          also delete its configuration and secret files in
#                    /etc/hiddify-sync and (hub) its journal in
#                    /var/lib/hiddify-sync/hub. Without it they are kept,
#                    so a later install.sh picks up where this one stopped.
#   --root DIR       act under DIR instead of / (tests); implies --no-systemctl
#   --no-systemctl   don't stop/disable the service
#   --systemctl      call systemctl even with --root (tests, with a stand-in
#                    systemctl first on PATH)
#
# A daemon installed from the hiddify-sync .deb is disabled here, but the
# package itself is removed with apt (remove, or purge).
set -euo pipefail

PROG=$(basename "$0")
say() { echo "$PROG: $*"; }
die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

ROLE=""
PURGE=0
ROOT=""
SYSTEMCTL=1
FORCE_SYSTEMCTL=0
while [ $# -gt 0 ]; do
  case "$1" in
    hub|reporter) [ -z "$ROLE" ] || die "give one role, got '$ROLE' and '$1'"; ROLE="$1"; shift ;;
    --purge) PURGE=1; shift ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    --systemctl) FORCE_SYSTEMCTL=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$ROLE" ] || { usage >&2; die "say which daemon to remove: hub or reporter"; }
if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "no such directory: $ROOT"
  ROOT=$(cd "$ROOT" && pwd)
  [ "$ROOT" != / ] || ROOT=""
  SYSTEMCTL=0
fi
[ $FORCE_SYSTEMCTL -eq 0 ] || SYSTEMCTL=1
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
  die "must be run as root (or with --root DIR)"
fi

DAEMON="hiddify-sync-$ROLE"
UNIT="$DAEMON.service"
ETC="$ROOT/etc/hiddify-sync"
UNIT_DIR="$ROOT/etc/systemd/system"
STATE="$ROOT/var/lib/hiddify-sync"
if [ "$ROLE" = hub ]; then
  OTHER=reporter
  SECRETS=(parent-api-key parent-db-password)
else
  OTHER=hub
  SECRETS=(hub-token mysql-password apply-api-key)
fi

FROM_PACKAGE=0
if [ -z "$ROOT" ] && dpkg-query -S "/usr/bin/$DAEMON" >/dev/null 2>&1; then
  FROM_PACKAGE=1
fi

# rm_say PATH: removes a file if present and says so.
rm_say() {
  if [ -e "$1" ] || [ -L "$1" ]; then
    rm -f "$1"
    say "removed ${1#"$ROOT"}"
  fi
}

if [ $SYSTEMCTL -eq 1 ]; then
  if systemctl cat "$UNIT" >/dev/null 2>&1; then
    systemctl disable --now "$UNIT" >/dev/null 2>&1 || systemctl stop "$UNIT" || true
    say "stopped and disabled $UNIT"
  fi
fi

rm_say "$UNIT_DIR/$UNIT"
rm_say "$UNIT_DIR/$UNIT.d/apply-command.conf"
rmdir "$UNIT_DIR/$UNIT.d" 2>/dev/null || true
if [ $FROM_PACKAGE -eq 1 ]; then
  say "/usr/bin/$DAEMON belongs to the hiddify-sync package: remove it with 'apt remove hiddify-sync' (or 'apt purge')"
else
  rm_say "$ROOT/usr/bin/$DAEMON"
  # Files shared by both daemons go with the last one.
  if [ ! -e "$ROOT/usr/bin/hiddify-sync-$OTHER" ]; then
    rm -rf "$ROOT/usr/share/hiddify-sync" "$ROOT/usr/share/doc/hiddify-sync"
  fi
fi
[ $SYSTEMCTL -eq 0 ] || systemctl daemon-reload

if [ $PURGE -eq 0 ]; then
  kept="/etc/hiddify-sync"
  [ "$ROLE" != hub ] || kept="$kept and /var/lib/hiddify-sync/hub (the journal)"
  say "kept $kept; run with --purge to delete them"
  exit 0
fi

rm_say "$ETC/$ROLE.toml"
for secret in "${SECRETS[@]}"; do rm_say "$ETC/$secret"; done
if [ "$ROLE" = hub ]; then
  if [ -d "$STATE/hub" ]; then
    rm -rf "$STATE/hub"
    say "removed /var/lib/hiddify-sync/hub (the journal)"
  fi
  rmdir "$STATE" 2>/dev/null || true
  say "the hub's schema in the parent's MariaDB (write = \"database\") is kept; drop it with: mysql -e 'DROP DATABASE hiddify_sync_hub'"
else
  say "the reporter's state schema in MariaDB is kept; drop it with: mysql -e 'DROP DATABASE hiddify_sync'"
fi
# TLS files are shared by both roles on a host running both.
if [ ! -e "$ETC/$OTHER.toml" ]; then
  if [ -d "$ETC/tls" ]; then
    rm -rf "$ETC/tls"
    say "removed /etc/hiddify-sync/tls"
  fi
  rmdir "$ETC" 2>/dev/null || say "left /etc/hiddify-sync: it holds files not created by install.sh"
fi
