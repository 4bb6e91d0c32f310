#!/usr/bin/env bash
# The hiddify-sync demo, on one machine, as root, from a fresh Debian 12:
#   - installs the build dependencies and builds (build-demo/),
#   - starts a private MariaDB (no TCP; a unix socket under the demo dir),
#   - panelsim as the PARENT panel with demo users,
#   - hiddify-sync-hub next to it,
#   - three CHILDREN, each: its own database, a panelsim generating traffic into
#     it (the panel's own read-modify-write, with a gap), and a reporter,
#   - then shows usage flowing up (bytes generated per child vs. the parent's
#     usage, to the byte), a user blocked on the parent disappearing from every
#     child (its row, then its xray and sing-box), a user created on the parent
#     appearing on every child (row, xray, sing-box), and the
#     hub's status.
# Everything it started is stopped when it ends (Ctrl-C included). Run it again
# as often as you like. DEMO_KEEP=1 leaves everything running and prints how to
# stop it; DEMO_SECONDS=N sets how long traffic flows (default 30).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEMO_DIR="${DEMO_DIR:-/tmp/hiddify-sync-demo}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-demo}"
SECONDS_OF_TRAFFIC="${DEMO_SECONDS:-30}"
CHILDREN=3
DEMO_USERS=24

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts a private MariaDB)"

say "Installing dependencies (Debian packages)"
bash "$ROOT/deploy/install-deps.sh"

say "Building (log: $BUILD_DIR/build.log)"
mkdir -p "$BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD_DIR/build.log" 2>&1 ||
  { tail -30 "$BUILD_DIR/build.log"; die "cmake failed"; }
cmake --build "$BUILD_DIR" -j"$(nproc)" --target hiddify-sync-hub hiddify-sync-reporter panelsim \
  >>"$BUILD_DIR/build.log" 2>&1 || { tail -30 "$BUILD_DIR/build.log"; die "build failed"; }
BIN="$BUILD_DIR/bin"

# --- a clean slate: stop what an earlier run left behind -------------------------------
stop_all() {
  if [ -f "$DEMO_DIR/pids" ]; then
    # reverse order: reporters and children first, MariaDB last
    tac "$DEMO_DIR/pids" | while read -r pid; do kill "$pid" 2>/dev/null || true; done
    # up to 5 s for a clean exit, then SIGKILL what is left
    for _ in $(seq 1 50); do
      alive=0
      while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$DEMO_DIR/pids"
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    tac "$DEMO_DIR/pids" | while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done
    rm -f "$DEMO_DIR/pids"
  fi
}
stop_all
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
chmod 700 "$DEMO_DIR"
if [ "${DEMO_KEEP:-0}" != 1 ]; then
  trap 'stop_all; echo; echo "demo: stopped everything (files kept in $DEMO_DIR)"' EXIT
fi

start() {  # start NAME CMD... — in the background, logging to DEMO_DIR/NAME.log
  local name=$1; shift
  "$@" >"$DEMO_DIR/$name.log" 2>&1 &
  echo $! >>"$DEMO_DIR/pids"
}
wait_file() {  # wait_file PATH SECONDS WHAT
  for _ in $(seq 1 $(($2 * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done
  die "$3 did not start; see $DEMO_DIR/*.log"
}
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
uuid() { cat /proc/sys/kernel/random/uuid; }
sql() { mariadb --socket="$SOCK" -uroot -N -B -e "$1"; }

# --- MariaDB --------------------------------------------------------------------------
say "Starting a private MariaDB in $DEMO_DIR/mysql"
SOCK="$DEMO_DIR/mysqld.sock"
mariadb-install-db --no-defaults --datadir="$DEMO_DIR/mysql" --auth-root-authentication-method=normal \
  --skip-test-db --user=root >"$DEMO_DIR/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"
start mariadbd mariadbd --no-defaults --datadir="$DEMO_DIR/mysql" --socket="$SOCK" --skip-networking \
  --user=root --pid-file="$DEMO_DIR/mysqld.pid" --innodb-buffer-pool-size=128M --skip-log-bin
for _ in $(seq 1 300); do sql "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
sql "SELECT 1" >/dev/null || die "MariaDB did not start; see $DEMO_DIR/mariadbd.log"
for db in parent $(seq -f 'child%g' 1 $CHILDREN); do sql "CREATE DATABASE $db"; done

# --- the parent panel -----------------------------------------------------------------
say "Starting the parent panel (panelsim) with $DEMO_USERS demo users"
PARENT_KEY=$(uuid)
start parent "$BIN/panelsim" --mysql-socket "$SOCK" --database parent --create-schema \
  --owner-uuid "$PARENT_KEY" --demo-users "$DEMO_USERS" --control --port 0 \
  --port-file "$DEMO_DIR/parent.port" --proxy-path "demo-admin-path" \
  --usage-task-interval-ms 1000 --apply-duration-ms 300 \
  --traffic-interval-ms 500 --traffic-users-per-tick 3 --traffic-max-bytes 20000000 --seed 99
wait_file "$DEMO_DIR/parent.port" 20 "the parent panel"
PARENT="http://127.0.0.1:$(cat "$DEMO_DIR/parent.port")"
# The parent carries traffic of its own too (as Hiddify parents usually do);
# paused until the traffic window below.
curl -sS -X POST --data '{"enabled":false}' "$PARENT/_sim/traffic" >/dev/null
PARENT_API="$PARENT/demo-admin-path/api/v2/admin"
api() {  # api METHOD PATH [BODY] — the parent's admin API with its key
  curl -sS -X "$1" -H "Hiddify-API-Key: $PARENT_KEY" -H 'Accept: application/json' \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "$PARENT_API/$2"
}
parent_total() { api GET user/ | jq '[.[].current_usage_GB * 1073741824 | round] | add'; }

# --- the hub --------------------------------------------------------------------------
say "Starting hiddify-sync-hub"
HUB_PORT=$(free_port)
HUB_METRICS_PORT=$(free_port)
printf '%s\n' "$PARENT_KEY" >"$DEMO_DIR/parent-api-key"
chmod 600 "$DEMO_DIR/parent-api-key"
{
  echo "listen = \"127.0.0.1:$HUB_PORT\""
  echo "plaintext = true   # demo on loopback only; real setups use [tls]"
  echo "operator_socket = \"$DEMO_DIR/hub.sock\"   # \`status\` asks here (no token needed)"
  echo "[parent]"
  echo "url = \"$PARENT/demo-admin-path\""
  echo "api_key_file = \"$DEMO_DIR/parent-api-key\""
  echo "write = \"database\"   # the hub runs beside the parent's MariaDB: exact with the parent's own traffic"
  echo "[parent.database]"
  echo "socket = \"$SOCK\""
  echo "user = \"root\""
  echo "database = \"parent\""
  echo "hub_database = \"hiddify_sync_hub\""
  echo "[journal]"
  echo "path = \"$DEMO_DIR/hub-journal.db\""
  echo "[apply]"
  echo "max_apply_delay = \"3s\""
  echo "[roster]"
  echo "poll_interval = \"1s\""
  echo "[metrics]"
  echo "listen = \"127.0.0.1:$HUB_METRICS_PORT\""
  echo "[nodes]"
} >"$DEMO_DIR/hub.toml"
for i in $(seq 1 $CHILDREN); do
  token=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
  printf '%s\n' "$token" >"$DEMO_DIR/child$i.token"
  chmod 600 "$DEMO_DIR/child$i.token"
  echo "child$i = \"sha256:$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)\"" >>"$DEMO_DIR/hub.toml"
done
start hub "$BIN/hiddify-sync-hub" --config "$DEMO_DIR/hub.toml"
for _ in $(seq 1 100); do grep -q -i "serving\|listening" "$DEMO_DIR/hub.log" 2>/dev/null && break; sleep 0.1; done

# --- the children ---------------------------------------------------------------------
say "Starting $CHILDREN children: a database, a panel generating traffic, a reporter each"
for i in $(seq 1 $CHILDREN); do
  start "child$i-panel" "$BIN/panelsim" --mysql-socket "$SOCK" --database "child$i" --create-schema \
    --owner-uuid "$(uuid)" --control --port 0 --port-file "$DEMO_DIR/child$i.port" \
    --traffic-interval-ms 500 --traffic-users-per-tick 6 --traffic-max-bytes 40000000 \
    --traffic-rmw-gap-ms 50 --seed "$i" --usage-task-interval-ms 1000 --apply-duration-ms 300
  wait_file "$DEMO_DIR/child$i.port" 20 "child $i's panel"
  CHILD_URL[$i]="http://127.0.0.1:$(cat "$DEMO_DIR/child$i.port")"
  STATUS_PORT[$i]=$(free_port)
  METRICS_PORT[$i]=$(free_port)
  cat >"$DEMO_DIR/reporter$i.toml" <<EOF
node_id = "child$i"
[hub]
address = "127.0.0.1:$HUB_PORT"
plaintext = true
token_file = "$DEMO_DIR/child$i.token"
[mysql]
socket = "$SOCK"
database = "child$i"
state_database = "sync_child$i"
[collect]
interval = "5s"
min_report_bytes = 1
[apply]
command = "$BIN/panelsim-ctl --port $(cat "$DEMO_DIR/child$i.port") apply_users --no-gui"
debounce = "500ms"
busy_retry = "500ms"
[panel]
address = "127.0.0.1:$(cat "$DEMO_DIR/child$i.port")"
[status]
listen = "127.0.0.1:${STATUS_PORT[$i]}"
[metrics]
listen = "127.0.0.1:${METRICS_PORT[$i]}"
EOF
  start "reporter$i" "$BIN/hiddify-sync-reporter" --config "$DEMO_DIR/reporter$i.toml"
done

child_users() { sql "SELECT COUNT(*) FROM child$1.user"; }
PARENT_USERS=$(api GET user/ | jq length)
for _ in $(seq 1 100); do
  ok=1
  for i in $(seq 1 $CHILDREN); do [ "$(child_users "$i")" = "$PARENT_USERS" ] || ok=0; done
  [ $ok = 1 ] && break
  sleep 0.2
done
for i in $(seq 1 $CHILDREN); do
  echo "child$i has $(child_users "$i") of the parent's $PARENT_USERS users (keys and quotas copied)"
done

# --- usage flows up -------------------------------------------------------------------
BASE_TOTAL=$(parent_total)
generated() { curl -sS "${CHILD_URL[$1]}/_sim/traffic" | jq '.total_bytes'; }
parent_generated() { curl -sS "$PARENT/_sim/traffic" | jq '.total_bytes'; }
PARENT_GEN_BASE=$(parent_generated)
curl -sS -X POST --data '{"enabled":true}' "$PARENT/_sim/traffic" >/dev/null
say "Traffic flows for ${SECONDS_OF_TRAFFIC}s (each child's panel adds bytes the way Hiddify does; the parent carries some of its own)"
printf '%8s  %16s  %16s\n' "t (s)" "generated (B)" "on parent (B)"
for t in $(seq 5 5 "$SECONDS_OF_TRAFFIC"); do
  sleep 5
  gen=0
  for i in $(seq 1 $CHILDREN); do gen=$((gen + $(generated "$i"))); done
  gen=$((gen + $(parent_generated) - PARENT_GEN_BASE))
  printf '%8s  %16s  %16s\n' "$t" "$gen" "$(( $(parent_total) - BASE_TOTAL ))"
done

say "Stopping traffic; waiting for the last bytes to reach the parent"
for i in $(seq 1 $CHILDREN); do
  curl -sS -X POST --data '{"enabled":false}' "${CHILD_URL[$i]}/_sim/traffic" >/dev/null
done
curl -sS -X POST --data '{"enabled":false}' "$PARENT/_sim/traffic" >/dev/null
PARENT_OWN=$(( $(parent_generated) - PARENT_GEN_BASE ))
GEN_TOTAL=$PARENT_OWN
for i in $(seq 1 $CHILDREN); do GEN_TOTAL=$((GEN_TOTAL + $(generated "$i"))); done
for _ in $(seq 1 60); do
  [ $(( $(parent_total) - BASE_TOTAL )) = "$GEN_TOTAL" ] && break
  sleep 1
done
printf '\n%-10s %18s\n' "child" "generated bytes"
for i in $(seq 1 $CHILDREN); do printf '%-10s %18s\n' "child$i" "$(generated "$i")"; done
printf '%-10s %18s\n' "parent own" "$PARENT_OWN"
printf '%-10s %18s\n' "sum" "$GEN_TOTAL"
PARENT_INC=$(( $(parent_total) - BASE_TOTAL ))
printf '%-10s %18s\n' "parent +" "$PARENT_INC"
if [ "$PARENT_INC" = "$GEN_TOTAL" ]; then
  echo "=> every byte arrived exactly once"
else
  echo "=> MISMATCH: $((PARENT_INC - GEN_TOTAL)) bytes; see $DEMO_DIR/hub.log"
fi

# --- a block flows down ---------------------------------------------------------------
VICTIM=$(api GET user/ | jq -r '[.[] | select(.is_active)][0].uuid')
say "Blocking user $VICTIM on the parent (PATCH enable=false)"
start_ns=$(date +%s%N)
api PATCH "user/$VICTIM/" '{"enable":false}' >/dev/null
ms() { echo $((($(date +%s%N) - start_ns) / 1000000)); }
in_core() {  # in_core CHILD CORE UUID -> "yes"/"no": is the user in that proxy core of the child
  curl -sS "${CHILD_URL[$1]}/_sim/cores" | jq -r --arg u "$3" --arg c "$2" \
    'if (.[$c] | map(ascii_downcase) | index($u)) == null then "no" else "yes" end'
}
# Each stage on every child, then the next: the times are from the PATCH.
wait_all() {  # wait_all LABEL COMMAND... : until COMMAND CHILD succeeds on every child
  local label=$1; shift
  local line="$label:"
  for i in $(seq 1 $CHILDREN); do
    for _ in $(seq 1 300); do "$@" "$i" && break; sleep 0.02; done
    if "$@" "$i"; then line="$line child$i $(ms) ms"; else line="$line child$i NOT after $(ms) ms"; fi
  done
  echo "$line"
}
row_disabled() { [ "$(sql "SELECT enable FROM child$1.user WHERE uuid='$VICTIM'")" = 0 ]; }
xray_gone() { [ "$(in_core "$1" xray "$VICTIM")" = no ]; }
singbox_gone() { [ "$(in_core "$1" singbox "$VICTIM")" = no ]; }
wait_all "  enable=0 in the child's table " row_disabled
wait_all "  gone from the child's xray    " xray_gone
wait_all "  gone from the child's sing-box" singbox_gone

# --- a new user flows down ------------------------------------------------------------
NEW=$(uuid)
say "Creating user $NEW on the parent"
start_ns=$(date +%s%N)
api POST user/ "{\"uuid\":\"$NEW\",\"name\":\"demo-new-user\",\"usage_limit_GB\":50,\"package_days\":30}" >/dev/null
row_present() { [ "$(sql "SELECT COUNT(*) FROM child$1.user WHERE uuid='$NEW'")" = 1 ]; }
xray_has() { [ "$(in_core "$1" xray "$NEW")" = yes ]; }
singbox_has() { [ "$(in_core "$1" singbox "$NEW")" = yes ]; }
wait_all "  in the child's table          " row_present
wait_all "  in the child's xray           " xray_has
wait_all "  in the child's sing-box       " singbox_has
for i in $(seq 1 $CHILDREN); do
  printf '  child%s has the parent'"'"'s keys (wg_pub): %s\n' "$i" \
    "$([ "$(sql "SELECT wg_pub FROM child$i.user WHERE uuid='$NEW'")" = "$(api GET "user/$NEW/" | jq -r .wg_pub)" ] && echo yes || echo NO)"
done

# --- status ---------------------------------------------------------------------------
say "Hub status"
"$BIN/hiddify-sync-hub" status --config "$DEMO_DIR/hub.toml" || true
say "Reporter status (child1)"
"$BIN/hiddify-sync-reporter" status --config "$DEMO_DIR/reporter1.toml" || true

say "Prometheus metrics (a few of them; all: curl 127.0.0.1:$HUB_METRICS_PORT/metrics)"
curl -s "127.0.0.1:$HUB_METRICS_PORT/metrics" |
  grep -E '^hsync_hub_(node_bytes_total|journal_pending_bytes|patches_total|parent_requests_total|roster_watchers)' || true
curl -s "127.0.0.1:${METRICS_PORT[1]}/metrics" |
  grep -E '^hsync_reporter_(collected_bytes_total|outbox_reports|users_changed_total)' || true

if [ "${DEMO_KEEP:-0}" = 1 ]; then
  say "Everything keeps running (DEMO_KEEP=1). Logs: $DEMO_DIR/*.log"
  echo "Stop it with:  xargs -a $DEMO_DIR/pids kill"
fi
