#!/usr/bin/env bash
# The systemd units in deploy/ pass `systemd-analyze verify` without a single
# warning (alone and with the reporter's apply-command drop-in), and carry the
# settings the daemons and the sandbox rely on.
#   units_verify_test.sh SOURCE_DIR BIN_DIR
set -euo pipefail
SRC="$1"
BIN="$2"
source "$SRC/tests/deploy/test_lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze not installed"
for daemon in hiddify-sync-hub hiddify-sync-reporter; do
  [ -x "$BIN/$daemon" ] || fail "$BIN/$daemon is not built"
done

new_temp_dir units

# copy_unit NAME DIR: the unit with ExecStart pointing at the built binary.
copy_unit() {
  sed "s#^ExecStart=/usr/bin/#ExecStart=$BIN/#" "$SRC/deploy/$1" >"$2/$1"
  grep -q "^ExecStart=$BIN/" "$2/$1" || fail "$1 has no ExecStart=/usr/bin/... line"
}

# verify DIR UNIT: systemd-analyze verify succeeds and prints nothing.
verify() {
  local out
  if ! out=$(cd "$1" && systemd-analyze verify "./$2" 2>&1); then
    fail "systemd-analyze verify $2 failed: $out"
  fi
  [ -z "$out" ] || fail "systemd-analyze verify $2 warned: $out"
}

step "both units verify cleanly"
mkdir -p "$T/plain"
copy_unit hiddify-sync-hub.service "$T/plain"
copy_unit hiddify-sync-reporter.service "$T/plain"
verify "$T/plain" hiddify-sync-hub.service
verify "$T/plain" hiddify-sync-reporter.service

step "the reporter verifies with the apply-command drop-in, which is loaded"
mkdir -p "$T/dropin/hiddify-sync-reporter.service.d"
copy_unit hiddify-sync-reporter.service "$T/dropin"
cp "$SRC/deploy/reporter-apply-command.conf" "$T/dropin/hiddify-sync-reporter.service.d/apply-command.conf"
verify "$T/dropin" hiddify-sync-reporter.service
debug=$(cd "$T/dropin" && SYSTEMD_LOG_LEVEL=debug systemd-analyze verify ./hiddify-sync-reporter.service 2>&1 || true)
[[ "$debug" == *"DropIn Path: $T/dropin/hiddify-sync-reporter.service.d/apply-command.conf"* ]] ||
  fail "the drop-in was not picked up"

step "the check is alive: a broken unit is reported"
sed 's/^Type=notify/Type=notifyy/' "$T/plain/hiddify-sync-hub.service" >"$T/plain/broken.service"
out=$(cd "$T/plain" && systemd-analyze verify ./broken.service 2>&1 || true)
[[ "$out" == *"notifyy"* ]] || fail "systemd-analyze did not notice a bad Type=: $out"

# has UNIT LINE: the unit has exactly this line.
has() { grep -qxF -- "$2" "$SRC/deploy/$1" || fail "$1 lacks '$2'"; }

step "settings the daemons and the sandbox rely on"
for unit in hiddify-sync-hub.service hiddify-sync-reporter.service; do
  for line in Type=notify NotifyAccess=main WatchdogSec=30 Restart=on-failure RestartSec=5 \
      RestartPreventExitStatus=2 ConfigurationDirectory=hiddify-sync NoNewPrivileges=yes \
      ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
      ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes \
      ProtectControlGroups=yes "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" \
      RestrictNamespaces=yes LockPersonality=yes MemoryDenyWriteExecute=yes \
      SystemCallArchitectures=native CapabilityBoundingSet= AmbientCapabilities= \
      WantedBy=multi-user.target; do
    has "$unit" "$line"
  done
done
has hiddify-sync-hub.service "ExecStart=/usr/bin/hiddify-sync-hub --config /etc/hiddify-sync/hub.toml"
has hiddify-sync-hub.service 'ExecReload=/bin/kill -HUP $MAINPID'
has hiddify-sync-hub.service StateDirectory=hiddify-sync/hub
has hiddify-sync-hub.service ReadWritePaths=/var/lib/hiddify-sync/hub
# The operator socket's root-only directory (hub.toml's operator_socket default).
has hiddify-sync-hub.service RuntimeDirectory=hiddify-sync
has hiddify-sync-hub.service RuntimeDirectoryMode=0700
grep -q '^# operator_socket = "/run/hiddify-sync/hub.sock"' "$SRC/deploy/hub.toml.example" ||
  fail "hub.toml.example's operator_socket is not in the unit's RuntimeDirectory"
has hiddify-sync-reporter.service \
  "ExecStart=/usr/bin/hiddify-sync-reporter --config /etc/hiddify-sync/reporter.toml"
has hiddify-sync-reporter.service ReadWritePaths=-/opt/hiddify-manager
grep -q '^After=.*mariadb.service' "$SRC/deploy/hiddify-sync-reporter.service" || fail "reporter not after MariaDB"
grep -q '^After=.*hiddify-panel.service' "$SRC/deploy/hiddify-sync-reporter.service" || fail "reporter not after the panel"
# Only the state directory is writable: no other ReadWritePaths in the hub.
[ "$(grep -c '^ReadWritePaths=' "$SRC/deploy/hiddify-sync-hub.service")" = 1 ] || fail "hub has extra writable paths"
# The journal default lives in the state directory.
grep -q '^# path = "/var/lib/hiddify-sync/hub/journal.db"' "$SRC/deploy/hub.toml.example" ||
  fail "hub.toml.example's journal path is not in the state directory"

step "the daemons take ExecStart's --config and exit 2 on a bad config (RestartPreventExitStatus=2)"
echo 'bogus_key = 1' >"$T/bad.toml"
for daemon in hiddify-sync-hub hiddify-sync-reporter; do
  rc=0
  out=$("$BIN/$daemon" --config "$T/bad.toml" 2>&1) || rc=$?
  [ $rc -eq 2 ] || fail "$daemon exited $rc on a bad config, expected 2: $out"
  [[ "$out" == *"bogus_key: unknown key"* ]] || fail "$daemon did not name the bad key: $out"
done

pass
