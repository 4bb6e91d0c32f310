#!/usr/bin/env bash
# deploy/install.sh and deploy/uninstall.sh under --root: a first install lays
# out binaries, unit, config, root-only secrets and the state dir; a re-run
# upgrades in place (also over a running binary) without touching config,
# secrets or state; the reporter's apply mode picks its sandbox drop-in;
# uninstall keeps data unless --purge; bad use is refused clearly.
#   install_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC="$1"
BUILD="$2"
source "$SRC/tests/deploy/test_lib.sh"
INSTALL="$SRC/deploy/install.sh"
UNINSTALL="$SRC/deploy/uninstall.sh"
for daemon in hiddify-sync-hub hiddify-sync-reporter; do
  [ -x "$BUILD/bin/$daemon" ] || fail "$BUILD/bin/$daemon is not built"
done

new_temp_dir install
R="$T/root"

step "first install of the hub"
"$INSTALL" hub --from-build "$BUILD" --root "$R" >"$T/hub1.log" 2>&1 || fail "install failed: $(cat "$T/hub1.log")"
cmp -s "$BUILD/bin/hiddify-sync-hub" "$R/usr/bin/hiddify-sync-hub" || fail "the built hub was not installed"
expect_mode 755 "$R/usr/bin/hiddify-sync-hub"
cmp -s "$SRC/deploy/hiddify-sync-hub.service" "$R/etc/systemd/system/hiddify-sync-hub.service" ||
  fail "unit not installed as shipped"
expect_mode 755 "$R/etc/hiddify-sync"
# No Hiddify Manager database in this root: the API mode, otherwise the example.
sed 's|^write = "database"|write = "api"|' "$SRC/deploy/hub.toml.example" >"$T/hub-api.toml"
cmp -s "$T/hub-api.toml" "$R/etc/hiddify-sync/hub.toml" || fail "hub.toml is not the example in api mode"
grep -q 'no Hiddify Manager database on this host: \[parent\] write = "api"' "$T/hub1.log" ||
  fail "the api mode was not explained: $(cat "$T/hub1.log")"
expect_mode 600 "$R/etc/hiddify-sync/hub.toml"
[ -f "$R/etc/hiddify-sync/parent-api-key" ] && [ ! -s "$R/etc/hiddify-sync/parent-api-key" ] ||
  fail "parent-api-key is not an empty file"
expect_mode 600 "$R/etc/hiddify-sync/parent-api-key"
expect_mode 700 "$R/var/lib/hiddify-sync/hub"
[ -f "$R/usr/share/hiddify-sync/hub.toml.example" ] || fail "example not kept for reference"
[ -x "$R/usr/share/hiddify-sync/make-certs.sh" ] || fail "make-certs.sh not installed"
[ ! -e "$R/usr/bin/hiddify-sync-reporter" ] || fail "installing the hub installed the reporter"
grep -q "hiddify-sync-hub add-node" "$T/hub1.log" || fail "next step (add-node) not printed"
grep -q "CHANGE-ME" "$T/hub1.log" || fail "the unedited config was not pointed out"
grep -q "fill /etc/hiddify-sync/parent-api-key" "$T/hub1.log" || fail "the empty API key was not pointed out"
grep -q "TLS: /etc/hiddify-sync/tls/hub.pem is missing" "$T/hub1.log" || fail "the missing certificate was not pointed out"

step "on a Hiddify Manager server the hub writes into the panel's database"
RH="$T/root-hiddify"
mkdir -p "$RH/opt/hiddify-manager/other/mysql" "$RH/run/mysqld"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$RH/run/mysqld/mysqld.sock"
"$INSTALL" hub --from-build "$BUILD" --root "$RH" >"$T/hubdb.log" 2>&1 || fail "install failed: $(cat "$T/hubdb.log")"
cmp -s "$SRC/deploy/hub.toml.example" "$RH/etc/hiddify-sync/hub.toml" || fail "hub.toml is not the example (database mode)"
grep -q "Hiddify Manager's database is on this host (/run/mysqld/mysqld.sock): \[parent\] write = \"database\"" "$T/hubdb.log" ||
  fail "the database mode was not explained: $(cat "$T/hubdb.log")"
echo "# edited" >>"$RH/etc/hiddify-sync/hub.toml"
"$INSTALL" hub --from-build "$BUILD" --root "$RH" >"$T/hubdb2.log" 2>&1 || fail "re-run failed"
tail -1 "$RH/etc/hiddify-sync/hub.toml" | grep -q "# edited" || fail "an existing hub.toml was rewritten"
grep -q "write = " "$T/hubdb2.log" && fail "the mode of an existing hub.toml was changed"

step "the operator configures it; the hub writes its journal"
sed -i 's#^url = .*#url = "https://parent.example.net/secretpath"#' "$R/etc/hiddify-sync/hub.toml"
printf 'child-1 = "sha256:%064d"\n' 1 >>"$R/etc/hiddify-sync/hub.toml"
echo "11111111-2222-3333-4444-555555555555" >"$R/etc/hiddify-sync/parent-api-key"
echo "journal bytes" >"$R/var/lib/hiddify-sync/hub/journal.db"
echo "certificate" >"$R/etc/hiddify-sync/tls/hub.pem"
echo "key" >"$R/etc/hiddify-sync/tls/hub.key"
config_sum=$(sha256sum <"$R/etc/hiddify-sync/hub.toml")

step "re-run upgrades over a running binary and keeps config, secret and journal"
mkdir -p "$T/newbuild/bin"
cp "$BUILD/bin/hiddify-sync-hub" "$T/newbuild/bin/hiddify-sync-hub"
echo "new version" >>"$T/newbuild/bin/hiddify-sync-hub"
# The installed file is busy being executed (a copy over it would fail with
# ETXTBSY): run /bin/sleep from that path.
cp /bin/sleep "$R/usr/bin/hiddify-sync-hub"
"$R/usr/bin/hiddify-sync-hub" 30 &
running=$!
sleep 0.2
"$INSTALL" hub --from-build "$T/newbuild" --root "$R" >"$T/hub2.log" 2>&1 || {
  kill "$running"; fail "upgrade failed: $(cat "$T/hub2.log")"; }
kill "$running"; wait "$running" 2>/dev/null || true
cmp -s "$T/newbuild/bin/hiddify-sync-hub" "$R/usr/bin/hiddify-sync-hub" || fail "binary not upgraded"
grep -q "upgraded /usr/bin/hiddify-sync-hub" "$T/hub2.log" || fail "upgrade not reported"
[ "$(sha256sum <"$R/etc/hiddify-sync/hub.toml")" = "$config_sum" ] || fail "the operator's hub.toml changed"
grep -q "kept your /etc/hiddify-sync/hub.toml" "$T/hub2.log" || fail "keeping the config not reported"
[ "$(cat "$R/etc/hiddify-sync/parent-api-key")" = "11111111-2222-3333-4444-555555555555" ] || fail "API key lost"
[ "$(cat "$R/var/lib/hiddify-sync/hub/journal.db")" = "journal bytes" ] || fail "journal lost"
grep -q "is installed and configured" "$T/hub2.log" || fail "configured hub reported as unconfigured: $(cat "$T/hub2.log")"
for leftover in "$R"/usr/bin/*.new.*; do
  [ ! -e "$leftover" ] || fail "temporary file left: $leftover"
done

step "a loosened secret file is tightened back to 0600; the same build again changes nothing"
chmod 0644 "$R/etc/hiddify-sync/parent-api-key"
"$INSTALL" hub --from-build "$T/newbuild" --root "$R" >"$T/hub3.log" 2>&1 || fail "re-run failed"
expect_mode 600 "$R/etc/hiddify-sync/parent-api-key"
grep -q "already this build" "$T/hub3.log" || fail "identical binary not recognised"

step "reporter: token file, apply-command drop-in while [apply] command is used"
"$INSTALL" reporter --from-build "$BUILD" --root "$R" >"$T/rep1.log" 2>&1 || fail "reporter install failed: $(cat "$T/rep1.log")"
cmp -s "$BUILD/bin/hiddify-sync-reporter" "$R/usr/bin/hiddify-sync-reporter" || fail "reporter not installed"
cmp -s "$SRC/deploy/reporter.toml.example" "$R/etc/hiddify-sync/reporter.toml" || fail "reporter.toml is not the example"
expect_mode 600 "$R/etc/hiddify-sync/hub-token"
[ ! -s "$R/etc/hiddify-sync/hub-token" ] || fail "hub-token not empty"
DROPIN="$R/etc/systemd/system/hiddify-sync-reporter.service.d/apply-command.conf"
cmp -s "$SRC/deploy/reporter-apply-command.conf" "$DROPIN" || fail "apply-command drop-in not installed"
grep -q "fill /etc/hiddify-sync/hub-token: the token printed by" "$T/rep1.log" || fail "token instructions not printed"
grep -q "TLS: copy the hub's CA certificate" "$T/rep1.log" || fail "the missing CA was not pointed out"
[ ! -e "$R/var/lib/hiddify-sync/reporter" ] || fail "a reporter state dir was created"

step "reporter with apply runs off ([apply] command = \"\"): the drop-in goes, the strict sandbox applies"
python3 - "$R/etc/hiddify-sync/reporter.toml" <<'EOF'
import sys
path = sys.argv[1]
text = open(path).read()
text = text.replace('node_id = "child-1"  # CHANGE-ME', 'node_id = "child-7"')
text = text.replace('address = "hub.example.com:7443"  # CHANGE-ME', 'address = "hub.example.net:7443"')
text = text.replace('# command = "/opt/hiddify-manager/install.sh apply_users --no-gui"', 'command = ""')
open(path, "w").write(text)
EOF
echo "token-123" >"$R/etc/hiddify-sync/hub-token"
echo "ca" >"$R/etc/hiddify-sync/tls/ca.pem"
"$INSTALL" reporter --from-build "$BUILD" --root "$R" >"$T/rep2.log" 2>&1 || fail "reporter re-run failed"
[ ! -e "$DROPIN" ] || fail "drop-in kept with apply runs off"
[ ! -e "$(dirname "$DROPIN")" ] || fail "empty drop-in dir kept"
grep -q "removed the apply-command drop-in" "$T/rep2.log" || fail "drop-in removal not reported"
grep -q "is installed and configured" "$T/rep2.log" || fail "configured reporter reported as unconfigured"
[ "$(cat "$R/etc/hiddify-sync/hub-token")" = "token-123" ] || fail "token lost"

step "uninstall hub keeps config and journal; the reporter is untouched"
"$UNINSTALL" hub --root "$R" >"$T/un1.log" 2>&1 || fail "uninstall failed: $(cat "$T/un1.log")"
[ ! -e "$R/usr/bin/hiddify-sync-hub" ] || fail "hub binary left"
[ ! -e "$R/etc/systemd/system/hiddify-sync-hub.service" ] || fail "hub unit left"
[ -f "$R/etc/hiddify-sync/hub.toml" ] && [ -f "$R/etc/hiddify-sync/parent-api-key" ] || fail "config removed without --purge"
[ "$(cat "$R/var/lib/hiddify-sync/hub/journal.db")" = "journal bytes" ] || fail "journal removed without --purge"
[ -x "$R/usr/bin/hiddify-sync-reporter" ] && [ -d "$R/usr/share/hiddify-sync" ] || fail "reporter's files removed"
grep -q "kept /etc/hiddify-sync" "$T/un1.log" || fail "keeping data not reported"
"$UNINSTALL" hub --root "$R" >/dev/null 2>&1 || fail "second uninstall (nothing left) failed"

step "reinstalling the hub finds the kept config and journal"
"$INSTALL" hub --from-build "$BUILD" --root "$R" >"$T/hub4.log" 2>&1 || fail "reinstall failed"
[ "$(sha256sum <"$R/etc/hiddify-sync/hub.toml")" = "$config_sum" ] || fail "config changed by reinstall"
[ "$(cat "$R/var/lib/hiddify-sync/hub/journal.db")" = "journal bytes" ] || fail "journal changed by reinstall"

step "uninstall --purge removes everything of both"
"$UNINSTALL" hub --purge --root "$R" >"$T/un2.log" 2>&1 || fail "purge hub failed: $(cat "$T/un2.log")"
[ ! -e "$R/var/lib/hiddify-sync" ] || fail "journal left after --purge"
[ ! -e "$R/etc/hiddify-sync/hub.toml" ] && [ ! -e "$R/etc/hiddify-sync/parent-api-key" ] || fail "hub config left"
[ -f "$R/etc/hiddify-sync/reporter.toml" ] || fail "purging the hub removed the reporter's config"
"$UNINSTALL" reporter --purge --root "$R" >"$T/un3.log" 2>&1 || fail "purge reporter failed: $(cat "$T/un3.log")"
left=$(cd "$R" && find . -type f)
[ -z "$left" ] || fail "files left after purging both: $left"
[ ! -e "$R/etc/hiddify-sync" ] || fail "/etc/hiddify-sync left"
grep -q "DROP DATABASE hiddify_sync" "$T/un3.log" || fail "the MariaDB state schema hint is missing"

step "systemd: enabled but not started while unconfigured (stand-in systemctl)"
R2="$T/root2"
mkdir -p "$T/fakebin"
cat >"$T/fakebin/systemctl" <<'EOF'
#!/bin/sh
echo "$*" >>"$FAKE_SYSTEMCTL_LOG"
case "$1" in
  is-active) exit "${FAKE_ACTIVE_RC:-3}" ;;
esac
exit 0
EOF
chmod +x "$T/fakebin/systemctl"
export FAKE_SYSTEMCTL_LOG="$T/systemctl.log"
with_fake_systemctl() { PATH="$T/fakebin:$PATH" "$@"; }
: >"$FAKE_SYSTEMCTL_LOG"
with_fake_systemctl "$INSTALL" hub --from-build "$BUILD" --root "$R2" --systemctl >"$T/sd1.log" 2>&1 ||
  fail "install with systemctl failed: $(cat "$T/sd1.log")"
grep -qx "daemon-reload" "$FAKE_SYSTEMCTL_LOG" || fail "no daemon-reload: $(cat "$FAKE_SYSTEMCTL_LOG")"
grep -qx "enable --quiet hiddify-sync-hub.service" "$FAKE_SYSTEMCTL_LOG" || fail "not enabled"
grep -q "^restart" "$FAKE_SYSTEMCTL_LOG" && fail "an unconfigured hub was started"
grep -q "not starting hiddify-sync-hub.service until it is configured" "$T/sd1.log" || fail "no 'not starting' note"

step "systemd: started once configured"
sed -i 's#^url = .*#url = "https://parent.example.net/secretpath"#' "$R2/etc/hiddify-sync/hub.toml"
echo "11111111-2222-3333-4444-555555555555" >"$R2/etc/hiddify-sync/parent-api-key"
: >"$FAKE_SYSTEMCTL_LOG"
with_fake_systemctl "$INSTALL" hub --from-build "$BUILD" --root "$R2" --systemctl >"$T/sd1b.log" 2>&1 ||
  fail "install failed: $(cat "$T/sd1b.log")"
grep -q "^restart" "$FAKE_SYSTEMCTL_LOG" && fail "a hub without its TLS certificate was started"
"$SRC/deploy/make-certs.sh" "$T/ca" --hub-name hub.example.net >/dev/null 2>&1 || fail "make-certs failed"
cp "$T/ca/hub.pem" "$T/ca/hub.key" "$R2/etc/hiddify-sync/tls/"
: >"$FAKE_SYSTEMCTL_LOG"
with_fake_systemctl "$INSTALL" hub --from-build "$BUILD" --root "$R2" --systemctl >"$T/sd2.log" 2>&1 ||
  fail "configured install failed: $(cat "$T/sd2.log")"
grep -qx "restart hiddify-sync-hub.service" "$FAKE_SYSTEMCTL_LOG" || fail "configured hub not started: $(cat "$FAKE_SYSTEMCTL_LOG")"

step "systemd: a running daemon is restarted onto the new binary even if the config looks unedited"
: >"$FAKE_SYSTEMCTL_LOG"
FAKE_ACTIVE_RC=0 with_fake_systemctl "$INSTALL" reporter --from-build "$BUILD" --root "$R2" --systemctl \
  >"$T/sd3.log" 2>&1 || fail "reporter install failed: $(cat "$T/sd3.log")"
grep -qx "restart hiddify-sync-reporter.service" "$FAKE_SYSTEMCTL_LOG" || fail "running reporter not restarted"
grep -q "restarted hiddify-sync-reporter.service onto the new version" "$T/sd3.log" || fail "restart not reported"

step "systemd: uninstall stops and disables, then reloads"
: >"$FAKE_SYSTEMCTL_LOG"
with_fake_systemctl "$UNINSTALL" hub --root "$R2" --systemctl >"$T/sd4.log" 2>&1 || fail "uninstall failed: $(cat "$T/sd4.log")"
grep -qx "disable --now hiddify-sync-hub.service" "$FAKE_SYSTEMCTL_LOG" || fail "not stopped/disabled: $(cat "$FAKE_SYSTEMCTL_LOG")"
[ "$(tail -1 "$FAKE_SYSTEMCTL_LOG")" = "daemon-reload" ] || fail "no daemon-reload after removing the unit"

step "bad use is refused clearly"
expect_failure "say which daemon" "$INSTALL" --root "$R"
expect_failure "unknown argument" "$INSTALL" parent --root "$R"
expect_failure "either --from-build or --deb" "$INSTALL" hub --from-build "$BUILD" --deb x.deb --root "$R"
expect_failure "no such file" "$INSTALL" hub --deb "$T/missing.deb" --root "$R"
expect_failure "has no built hiddify-sync-hub" "$INSTALL" hub --from-build "$T" --root "$R"
expect_failure "say which daemon" "$UNINSTALL" --root "$R"
if command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ]; then
  as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  expect_failure "must be run as root" "${as_nobody[@]}" "$INSTALL" hub --from-build "$BUILD"
  expect_failure "must be run as root" "${as_nobody[@]}" "$UNINSTALL" hub
elif [ "$(id -u)" -ne 0 ]; then
  expect_failure "must be run as root" "$INSTALL" hub --from-build "$BUILD"
  expect_failure "must be run as root" "$UNINSTALL" hub
fi

pass
