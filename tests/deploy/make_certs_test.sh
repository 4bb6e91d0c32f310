#!/usr/bin/env bash
# Runs deploy/make-certs.sh into a temp dir and checks what it promises: a CA
# that verifies the hub and client certificates, the hub's SANs and key usage,
# root-only keys, reuse of the CA on a re-run, already-expired certificates
# with --expired, and clear refusals of bad arguments.
# With BIN_DIR, the built hub serves TLS with these files and openssl
# s_client checks the handshake as a reporter would.
#   make_certs_test.sh SOURCE_DIR [BIN_DIR]
set -euo pipefail
SRC="$1"
BIN="${2:-}"
SCRIPT="$SRC/deploy/make-certs.sh"
source "$SRC/tests/deploy/test_lib.sh"
command -v openssl >/dev/null || skip "openssl not installed"

new_temp_dir make-certs
OUT="$T/certs"

step "first run: CA, hub certificate with names, two client certificates"
"$SCRIPT" "$OUT" --hub-name hub.example.org --hub-name 10.1.2.3 --hub-name fd00::7 \
  --client child-1 --client child.2 --days 30 >"$T/run1.log" 2>&1 || fail "make-certs failed: $(cat "$T/run1.log")"
for f in ca.pem ca.key hub.pem hub.key client-child-1.pem client-child-1.key client-child.2.pem client-child.2.key; do
  [ -f "$OUT/$f" ] || fail "missing $f"
done
for f in ca.key hub.key client-child-1.key client-child.2.key; do
  expect_mode 600 "$OUT/$f"
done
expect_mode 700 "$OUT"
expect_mode 644 "$OUT/hub.pem"
grep -q "/etc/hiddify-sync/tls/hub.pem" "$T/run1.log" || fail "no copy instructions printed"

step "the CA verifies the hub as a TLS server for each of its names"
for name in hub.example.org localhost; do
  openssl verify -CAfile "$OUT/ca.pem" -purpose sslserver -verify_hostname "$name" "$OUT/hub.pem" >/dev/null ||
    fail "hub.pem does not verify for $name"
done
for ip in 10.1.2.3 127.0.0.1 fd00::7 ::1; do
  openssl verify -CAfile "$OUT/ca.pem" -purpose sslserver -verify_ip "$ip" "$OUT/hub.pem" >/dev/null ||
    fail "hub.pem does not verify for IP $ip"
done
if openssl verify -CAfile "$OUT/ca.pem" -verify_hostname other.example.org "$OUT/hub.pem" >/dev/null 2>&1; then
  fail "hub.pem verified for a name it does not carry"
fi
san=$(openssl x509 -in "$OUT/hub.pem" -noout -ext subjectAltName)
for want in "DNS:hub.example.org" "IP Address:10.1.2.3" "DNS:localhost" "IP Address:127.0.0.1"; do
  [[ "$san" == *"$want"* ]] || fail "SAN lacks $want: $san"
done
openssl x509 -in "$OUT/hub.pem" -noout -ext extendedKeyUsage | grep -q "TLS Web Server Authentication" ||
  fail "hub.pem lacks serverAuth"
openssl x509 -in "$OUT/hub.pem" -noout -checkend $((29 * 86400)) >/dev/null || fail "hub.pem expires before --days 30"
if openssl x509 -in "$OUT/hub.pem" -noout -checkend $((31 * 86400)) >/dev/null; then
  fail "hub.pem outlives --days 30"
fi
[ "$(openssl x509 -in "$OUT/hub.pem" -noout -pubkey)" = "$(openssl pkey -in "$OUT/hub.key" -pubout)" ] ||
  fail "hub.key does not belong to hub.pem"

step "client certificates: CN = node id, clientAuth, verified by the CA, not usable as a server"
for node in child-1 child.2; do
  pem="$OUT/client-$node.pem"
  openssl verify -CAfile "$OUT/ca.pem" -purpose sslclient "$pem" >/dev/null || fail "$pem does not verify"
  openssl x509 -in "$pem" -noout -subject -nameopt multiline | grep -q "commonName *= $node\$" ||
    fail "$pem subject is not CN=$node"
  if openssl verify -CAfile "$OUT/ca.pem" -purpose sslserver "$pem" >/dev/null 2>&1; then
    fail "$pem is accepted as a server certificate"
  fi
done

step "a certificate from another CA does not verify"
"$SCRIPT" "$T/other" >/dev/null 2>&1 || fail "second CA failed"
if openssl verify -CAfile "$T/other/ca.pem" "$OUT/hub.pem" >/dev/null 2>&1; then
  fail "hub.pem verified against a foreign CA"
fi

step "re-run with --client reuses the CA and keeps the hub certificate"
ca_before=$(sha256sum <"$OUT/ca.pem"); hub_before=$(sha256sum <"$OUT/hub.pem")
"$SCRIPT" "$OUT" --client child-3 >"$T/run2.log" 2>&1 || fail "re-run failed: $(cat "$T/run2.log")"
[ "$(sha256sum <"$OUT/ca.pem")" = "$ca_before" ] || fail "the CA was replaced"
[ "$(sha256sum <"$OUT/hub.pem")" = "$hub_before" ] || fail "hub.pem was replaced"
openssl verify -CAfile "$OUT/ca.pem" "$OUT/client-child-3.pem" >/dev/null || fail "child-3 not signed by the CA"
"$SCRIPT" "$OUT" --client child-3 >"$T/run3.log" 2>&1 || fail "third run failed"
grep -q "keeping the existing" "$T/run3.log" || fail "an existing client certificate was not kept"

step "--expired: certificates from the same CA that are already expired"
"$SCRIPT" "$OUT" --expired --client child-1 >"$T/run4.log" 2>&1 || fail "--expired failed: $(cat "$T/run4.log")"
for pem in "$OUT/hub-expired.pem" "$OUT/client-child-1-expired.pem"; do
  [ -f "$pem" ] || fail "missing $pem"
  out=$(openssl verify -CAfile "$OUT/ca.pem" "$pem" 2>&1) && fail "$pem verified although expired"
  [[ "$out" == *"certificate has expired"* ]] || fail "$pem failed for another reason: $out"
  openssl verify -CAfile "$OUT/ca.pem" -no_check_time "$pem" >/dev/null || fail "$pem is not signed by the CA"
done
[ "$(sha256sum <"$OUT/hub.pem")" = "$hub_before" ] || fail "--expired touched hub.pem"

step "bad arguments are refused with a clear message"
expect_failure "whole number of days" "$SCRIPT" "$T/bad" --days -1
expect_failure "whole number of days" "$SCRIPT" "$T/bad" --days 0
expect_failure "neither a DNS name nor an IP" "$SCRIPT" "$T/bad" --hub-name "bad name"
expect_failure "node ids are" "$SCRIPT" "$T/bad" --client "a/b"
expect_failure "unknown option" "$SCRIPT" "$T/bad" --bogus
expect_failure "OUTDIR is required" "$SCRIPT"
[ ! -e "$T/bad" ] || fail "a refused run created its OUTDIR"

if [ -n "$BIN" ]; then
  # serve_hub CERT KEY: starts the built hub on a free loopback port with
  # these files; sets HUB_PID and HUB_PORT.
  serve_hub() {
    local dir
    dir="$T/hub-$(basename "$1" .pem)"
    mkdir -p "$dir"
    echo "11111111-2222-3333-4444-555555555555" >"$dir/api-key"
    cat >"$dir/hub.toml" <<EOF
listen = "127.0.0.1:0"
operator_socket = "$dir/hub.sock"
[tls]
cert_file = "$1"
key_file = "$2"
[parent]
url = "http://127.0.0.1:9/p"
api_key_file = "$dir/api-key"
[journal]
path = "$dir/journal.db"
[metrics]
listen = ""
EOF
    "$BIN/hiddify-sync-hub" --config "$dir/hub.toml" >"$dir/log" 2>&1 &
    HUB_PID=$!
    HUB_PORT=""
    for _ in $(seq 100); do
      HUB_PORT=$(sed -n 's/.*serving on .*(port \([0-9]*\),.*/\1/p' "$dir/log")
      [ -z "$HUB_PORT" ] || return 0
      kill -0 "$HUB_PID" 2>/dev/null || fail "the hub exited: $(cat "$dir/log")"
      sleep 0.1
    done
    kill "$HUB_PID"
    fail "the hub did not start serving: $(cat "$dir/log")"
  }
  stop_hub() { kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true; }
  # handshake CAFILE NAME: what s_client says connecting to the hub as NAME.
  handshake() {
    echo | timeout 10 openssl s_client -connect "127.0.0.1:$HUB_PORT" -CAfile "$1" \
      -verify_hostname "$2" -verify_return_error -alpn h2 2>&1 || true
  }

  step "the built hub serves TLS with these files; a reporter's checks pass"
  serve_hub "$OUT/hub.pem" "$OUT/hub.key"
  out=$(handshake "$OUT/ca.pem" hub.example.org)
  [[ "$out" == *"Verify return code: 0 (ok)"* && "$out" == *"ALPN protocol: h2"* ]] ||
    { stop_hub; fail "handshake with the CA failed: $out"; }
  out=$(handshake "$T/other/ca.pem" hub.example.org)
  [[ "$out" != *"Verify return code: 0 (ok)"* ]] || { stop_hub; fail "a foreign CA accepted the hub"; }
  out=$(handshake "$OUT/ca.pem" other.example.org)
  [[ "$out" != *"Verify return code: 0 (ok)"* ]] || { stop_hub; fail "the hub passed for a name it lacks"; }
  stop_hub

  step "an expired hub certificate is refused by the client"
  serve_hub "$OUT/hub-expired.pem" "$OUT/hub-expired.key"
  out=$(handshake "$OUT/ca.pem" localhost)
  stop_hub
  [[ "$out" == *"certificate has expired"* ]] || fail "expired certificate not refused: $out"
fi

pass
