#!/usr/bin/env bash
# install.sh: installs (or upgrades in place) one hiddify-sync daemon with its
# systemd unit, configuration directory and root-only secret files.
#
#   install.sh hub|reporter [--from-build DIR | --deb FILE] [--root DIR] [--no-systemctl]
#
#   hub|reporter     hub on the parent server, reporter on every child
#   --from-build DIR a CMake build dir of this checkout (binaries in DIR/bin);
#                    the default is the checkout's build/ when it has them
#   --deb FILE       the hiddify-sync .deb (cpack -G DEB), installed with apt
#   --root DIR       install under DIR instead of / (tests, images); implies
#                    --no-systemctl and needs no root
#   --no-systemctl   don't call systemctl (no daemon-reload/enable/restart)
#   --systemctl      call systemctl even with --root (tests, with a stand-in
#                    systemctl first on PATH)
#
# Never overwrites an existing configuration or secret file and never touches
# the hub's journal in /var/lib/hiddify-sync/hub: re-running it upgrades in
# place. The service is enabled but started only once it looks configured;
# a running or configured service is restarted onto the new binary.
set -euo pipefail
umask 022

PROG=$(basename "$0")
HERE=$(cd "$(dirname "$0")" && pwd)
say() { echo "$PROG: $*"; }
die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

ROLE=""
NEW_HUB_CONFIG=0
BUILD_DIR=""
DEB=""
ROOT=""
SYSTEMCTL=1
FORCE_SYSTEMCTL=0
while [ $# -gt 0 ]; do
  case "$1" in
    hub|reporter) [ -z "$ROLE" ] || die "give one role, got '$ROLE' and '$1'"; ROLE="$1"; shift ;;
    --from-build) [ $# -ge 2 ] || die "--from-build needs a directory"; BUILD_DIR="$2"; shift 2 ;;
    --deb) [ $# -ge 2 ] || die "--deb needs a file"; DEB="$2"; shift 2 ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    --systemctl) FORCE_SYSTEMCTL=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$ROLE" ] || { usage >&2; die "say which daemon to install: hub or reporter"; }
[ -z "$BUILD_DIR" ] || [ -z "$DEB" ] || die "use either --from-build or --deb, not both"
if [ -n "$ROOT" ]; then
  mkdir -p "$ROOT"
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
CONFIG="$ETC/$ROLE.toml"
SHARE="$ROOT/usr/share/hiddify-sync"
DOC="$ROOT/usr/share/doc/hiddify-sync"
UNIT_DIR="$ROOT/etc/systemd/system"
DROPIN_DIR="$UNIT_DIR/$UNIT.d"
STATE="$ROOT/var/lib/hiddify-sync"
if [ "$ROLE" = hub ]; then SECRETS=(parent-api-key); else SECRETS=(hub-token); fi

# Replaces DEST by SRC atomically (a running daemon keeps its old inode).
put_file() {
  local src="$1" dest="$2" mode="$3"
  install -D -m "$mode" "$src" "$dest.new.$$"
  mv -f "$dest.new.$$" "$dest"
}

# --- 1. binaries and shipped files ------------------------------------------
if [ -n "$DEB" ]; then
  [ -f "$DEB" ] || die "no such file: $DEB"
  DEB=$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB")
  if [ -n "$ROOT" ]; then
    dpkg-deb -x "$DEB" "$ROOT" || die "cannot unpack $DEB"
    say "unpacked $(basename "$DEB") under $ROOT"
  else
    say "installing $(basename "$DEB") with apt (pulls in its library dependencies)"
    apt-get install -y --no-install-recommends "$DEB" || die "apt-get install $DEB failed"
  fi
  [ -x "$ROOT/usr/bin/$DAEMON" ] || die "$DEB did not install /usr/bin/$DAEMON"
  # A unit left in /etc by an earlier --from-build install would shadow the
  # package's /lib/systemd/system/$UNIT.
  if [ -e "$UNIT_DIR/$UNIT" ]; then
    rm -f "$UNIT_DIR/$UNIT"
    say "removed /etc/systemd/system/$UNIT of an earlier build install; the package's unit is used"
  fi
  FILES="$SHARE"  # examples and drop-ins as shipped by the package
else
  if [ -z "$BUILD_DIR" ]; then
    BUILD_DIR="$HERE/../build"
    [ -x "$BUILD_DIR/bin/$DAEMON" ] ||
      die "no --from-build DIR or --deb FILE given, and $BUILD_DIR/bin/$DAEMON does not exist (build with: cmake -S . -B build && cmake --build build --target $DAEMON)"
  fi
  [ -d "$BUILD_DIR" ] || die "no such build directory: $BUILD_DIR"
  BIN="$BUILD_DIR/bin/$DAEMON"
  [ -x "$BIN" ] || BIN="$BUILD_DIR/$DAEMON"
  [ -x "$BIN" ] || die "$BUILD_DIR has no built $DAEMON (cmake --build $BUILD_DIR --target $DAEMON)"
  if [ -z "$ROOT" ] && dpkg-query -S "/usr/bin/$DAEMON" >/dev/null 2>&1; then
    die "/usr/bin/$DAEMON belongs to the hiddify-sync package: upgrade with --deb FILE, or 'apt remove hiddify-sync' first"
  fi
  if [ -e "$ROOT/usr/bin/$DAEMON" ] && cmp -s "$BIN" "$ROOT/usr/bin/$DAEMON"; then
    say "/usr/bin/$DAEMON is already this build"
  else
    [ -e "$ROOT/usr/bin/$DAEMON" ] && verb=upgraded || verb=installed
    put_file "$BIN" "$ROOT/usr/bin/$DAEMON" 0755
    say "$verb /usr/bin/$DAEMON"
  fi
  put_file "$HERE/$UNIT" "$UNIT_DIR/$UNIT" 0644
  say "installed the unit /etc/systemd/system/$UNIT"
  put_file "$HERE/$ROLE.toml.example" "$SHARE/$ROLE.toml.example" 0644
  put_file "$HERE/make-certs.sh" "$SHARE/make-certs.sh" 0755
  [ "$ROLE" = hub ] || put_file "$HERE/reporter-apply-command.conf" "$SHARE/reporter-apply-command.conf" 0644
  [ ! -f "$HERE/../README.md" ] || put_file "$HERE/../README.md" "$DOC/README.md" 0644
  FILES="$HERE"
fi

# --- 2. configuration and secrets (never overwritten) ----------------------
install -d -m 0755 "$ETC" "$ETC/tls"
if [ -e "$CONFIG" ]; then
  if cmp -s "$CONFIG" "$FILES/$ROLE.toml.example"; then
    say "kept /etc/hiddify-sync/$ROLE.toml (still the unedited example)"
  else
    say "kept your /etc/hiddify-sync/$ROLE.toml (new keys, if any: /usr/share/hiddify-sync/$ROLE.toml.example)"
  fi
else
  install -m 0600 "$FILES/$ROLE.toml.example" "$CONFIG"
  say "created /etc/hiddify-sync/$ROLE.toml from the example"
  [ "$ROLE" != hub ] || NEW_HUB_CONFIG=1
fi
for secret in "${SECRETS[@]}"; do
  path="$ETC/$secret"
  if [ -e "$path" ]; then
    if [ "$(stat -c %a "$path")" != 600 ]; then
      chmod 0600 "$path"
      say "tightened /etc/hiddify-sync/$secret to mode 0600"
    fi
  else
    install -m 0600 /dev/null "$path"
    say "created the empty secret file /etc/hiddify-sync/$secret (mode 0600)"
  fi
  [ -n "$ROOT" ] || chown root:root "$path"
done

# --- 2b. the hub: the parent panel's database on this host? ------------------
# A new hub.toml writes usage straight into Hiddify Manager's MariaDB
# ([parent] write = "database", the example's choice) when the panel and its
# database are on this host (PANEL.md §2 "Access"); otherwise through the API.
# root over the socket (unix_socket authentication) is the default account;
# when root cannot log in that way, the panel's own account is used with its
# password copied into a root-only file.
if [ $NEW_HUB_CONFIG -eq 1 ]; then
  sock=""
  for candidate in /run/mysqld/mysqld.sock /var/run/mysqld/mysqld.sock; do
    if [ -S "$ROOT$candidate" ]; then sock="$candidate"; break; fi
  done
  if [ -n "$sock" ] && [ -d "$ROOT/opt/hiddify-manager" ]; then
    [ "$sock" = /run/mysqld/mysqld.sock ] ||
      sed -i "s|^# socket = \"/run/mysqld/mysqld.sock\"|socket = \"$sock\"|" "$CONFIG"
    panel_pass="$ROOT/opt/hiddify-manager/other/mysql/mysql_pass"
    if [ -z "$ROOT" ] && command -v mysql >/dev/null &&
        ! mysql --protocol=socket -S "$sock" -u root -e 'SELECT 1' hiddifypanel >/dev/null 2>&1 &&
        [ -s "$panel_pass" ]; then
      install -m 0600 "$panel_pass" "$ETC/parent-db-password"
      sed -i -e 's|^# user = "root"|user = "hiddifypanel"|' \
        -e 's|^# password_file = ""|password_file = "/etc/hiddify-sync/parent-db-password"|' "$CONFIG"
      say "root cannot log in to MariaDB over $sock: the hub uses the panel's account hiddifypanel (password copied to /etc/hiddify-sync/parent-db-password, mode 0600)"
    fi
    say "Hiddify Manager's database is on this host ($sock): [parent] write = \"database\" (usage in one transaction per batch, exact while the parent carries traffic)"
  else
    sed -i 's|^write = "database"|write = "api"|' "$CONFIG"
    say "no Hiddify Manager database on this host: [parent] write = \"api\" (usage through the panel's API; see README for what that costs the panel)"
  fi
fi

# --- 3. state ----------------------------------------------------------------
# The hub's journal lives in /var/lib/hiddify-sync/hub (the unit's
# StateDirectory); the reporter keeps its state in MariaDB.
if [ "$ROLE" = hub ]; then
  install -d -m 0755 "$STATE"
  install -d -m 0700 "$STATE/hub"
  chmod 0700 "$STATE/hub"
fi

# --- 4. the reporter's apply mode decides its sandbox -----------------------
# Prints off or command: whether [apply] of the reporter's config runs a command.
apply_mode() {
  awk '
    /^[[:space:]]*\[/ { section = $0; gsub(/[][[:space:]]/, "", section); next }
    section == "apply" && /^[[:space:]]*command[[:space:]]*=[[:space:]]*""/ { off = 1 }
    END { print (off ? "off" : "command") }' "$1"
}
if [ "$ROLE" = reporter ]; then
  mode=$(apply_mode "$CONFIG")
  if [ "$mode" = command ]; then
    put_file "$FILES/reporter-apply-command.conf" "$DROPIN_DIR/apply-command.conf" 0644
    say "[apply] command in use: installed the drop-in $UNIT.d/apply-command.conf (looser sandbox for Hiddify Manager's apply script)"
  else
    if [ -e "$DROPIN_DIR/apply-command.conf" ]; then
      rm -f "$DROPIN_DIR/apply-command.conf"
      rmdir "$DROPIN_DIR" 2>/dev/null || true
      say "[apply] $mode: removed the apply-command drop-in, the strict sandbox applies"
    fi
  fi
fi

# --- 5. does the configuration look filled in? -------------------------------
# toml_value SECTION KEY: the (unquoted) value of an uncommented `KEY = ...`
# in [SECTION] of the config ("" for top level); empty when absent.
toml_value() {
  awk -v want_section="$1" -v want_key="$2" '
    /^[[:space:]]*\[/ { section = $0; gsub(/[][[:space:]]/, "", section); next }
    section == want_section && $0 ~ "^[[:space:]]*" want_key "[[:space:]]*=" {
      value = $0
      sub(/^[^=]*=[[:space:]]*/, "", value)
      if (value ~ /^"/) { sub(/^"/, "", value); sub(/".*$/, "", value) } else { sub(/[[:space:]#].*$/, "", value) }
      print value
      exit
    }' "$CONFIG"
}
PENDING=()
if grep -v '^[[:space:]]*#' "$CONFIG" | grep -q 'CHANGE-ME'; then
  PENDING+=("edit /etc/hiddify-sync/$ROLE.toml: every line marked CHANGE-ME (then delete the mark)")
fi
for secret in "${SECRETS[@]}"; do
  if [ ! -s "$ETC/$secret" ]; then
    if [ "$secret" = parent-api-key ]; then
      PENDING+=("fill /etc/hiddify-sync/parent-api-key: the UUID of a super admin of the parent panel (one line)")
    else
      PENDING+=("fill /etc/hiddify-sync/hub-token: the token printed by 'hiddify-sync-hub add-node <node_id>' on the parent (one line; node_id in reporter.toml is that same name)")
    fi
  fi
done
if [ "$ROLE" = hub ]; then
  if [ "$(toml_value "" plaintext)" != true ]; then
    for key in cert_file key_file; do
      file=$(toml_value tls "$key")
      if [ -n "$file" ] && [ ! -s "$ROOT$file" ]; then
        PENDING+=("TLS: $file is missing; make a CA and certificates with /usr/share/hiddify-sync/make-certs.sh /root/hiddify-sync-ca --hub-name <the hub's DNS name or IP>, then copy hub.pem / hub.key as it prints")
        break
      fi
    done
  fi
else
  file=$(toml_value hub ca_file)
  if [ -n "$file" ] && [ ! -s "$ROOT$file" ]; then
    PENDING+=("TLS: copy the hub's CA certificate (ca.pem from make-certs.sh) to $file, or set [hub] ca_file = \"\" for a hub certificate from a public CA")
  fi
fi

# --- 6. systemd ----------------------------------------------------------------
if [ $SYSTEMCTL -eq 1 ]; then
  systemctl daemon-reload
  systemctl enable --quiet "$UNIT"
  say "enabled $UNIT"
  if systemctl is-active --quiet "$UNIT"; then
    systemctl restart "$UNIT"
    say "restarted $UNIT onto the new version"
  elif [ ${#PENDING[@]} -eq 0 ]; then
    if systemctl restart "$UNIT"; then
      say "started $UNIT"
    else
      say "$UNIT did not start: journalctl -u $UNIT -n 50"
    fi
  else
    say "not starting $UNIT until it is configured"
  fi
fi

# --- 7. what next ------------------------------------------------------------
echo
if [ ${#PENDING[@]} -eq 0 ]; then
  echo "$DAEMON is installed and configured."
  echo "  check:  systemctl status $UNIT; $DAEMON status; journalctl -u $UNIT -f"
  [ "$ROLE" != hub ] ||
    echo "  enrol a child: hiddify-sync-hub add-node <NAME>, then systemctl reload $UNIT"
  exit 0
fi
echo "Next steps for $DAEMON:"
n=1
for item in "${PENDING[@]}"; do echo "  $n. $item"; n=$((n + 1)); done
if [ "$ROLE" = hub ]; then
  echo "  $n. enrol each child: hiddify-sync-hub add-node <NAME>  (prints the node's token once)"
  n=$((n + 1))
else
  echo "  $n. optional: a MariaDB password in /etc/hiddify-sync/mysql-password (0600) and [mysql] password_file"
  n=$((n + 1))
fi
if [ $SYSTEMCTL -eq 1 ]; then
  echo "  $n. systemctl start $UNIT   (it is enabled: it starts at boot from then on)"
else
  echo "  $n. systemctl daemon-reload && systemctl enable --now $UNIT"
fi
