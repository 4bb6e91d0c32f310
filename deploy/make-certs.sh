#!/usr/bin/env bash
# make-certs.sh: a private CA and the TLS certificates for a first
# hiddify-sync setup (hub server certificate, optional reporter client
# certificates), with openssl.
#
#   make-certs.sh OUTDIR [--hub-name DNS_OR_IP]... [--client NODE_ID]...
#                 [--days N] [--no-default-names] [--expired] [--force]
#
#   OUTDIR              where the files go (created, mode 0700). An existing
#                       ca.pem + ca.key there is reused, so re-running with
#                       just --client issues one more node certificate from
#                       the same CA.
#   --hub-name NAME     a DNS name or IP address reporters use to reach the
#                       hub (repeatable); all go into the hub certificate's
#                       subjectAltName. localhost, 127.0.0.1 and ::1 are added
#                       unless --no-default-names.
#   --client NODE_ID    also issue a client certificate with CN=NODE_ID
#                       (repeatable), for a hub with require_client_cert.
#   --days N            validity of the hub/client certificates (default 825);
#                       a new CA is valid for 3650 days.
#   --expired           for tests: issue the certificates already expired
#                       (valid from 2 days ago to 1 day ago), named
#                       hub-expired.* and client-NODE_ID-expired.*, signed
#                       by the same CA.
#   --force             replace existing hub/client files (never the CA).
#
# Files: ca.pem, ca.key (0600, keep it off the servers once done), hub.pem,
# hub.key (0600), client-NODE_ID.pem, client-NODE_ID.key (0600).
set -euo pipefail

PROG=$(basename "$0")
die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

OUTDIR=""
HUB_NAMES=()
CLIENTS=()
DAYS=825
CA_DAYS=3650
DEFAULT_NAMES=1
EXPIRED=0
FORCE=0

while [ $# -gt 0 ]; do
  case "$1" in
    --hub-name) [ $# -ge 2 ] || die "--hub-name needs a value"; HUB_NAMES+=("$2"); shift 2 ;;
    --client) [ $# -ge 2 ] || die "--client needs a node id"; CLIENTS+=("$2"); shift 2 ;;
    --days) [ $# -ge 2 ] || die "--days needs a number"; DAYS="$2"; shift 2 ;;
    --no-default-names) DEFAULT_NAMES=0; shift ;;
    --expired) EXPIRED=1; shift ;;
    --force) FORCE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$OUTDIR" ] || die "only one OUTDIR, got '$OUTDIR' and '$1'"; OUTDIR="$1"; shift ;;
  esac
done

[ -n "$OUTDIR" ] || { usage >&2; die "OUTDIR is required"; }
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
[[ "$DAYS" =~ ^[0-9]+$ ]] && [ "$DAYS" -ge 1 ] && [ "$DAYS" -le 36500 ] ||
  die "--days must be a whole number of days from 1 to 36500, got '$DAYS'"

is_ipv4() { [[ "$1" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; }
is_ipv6() { [[ "$1" == *:* && "$1" =~ ^[0-9A-Fa-f:.]+$ ]]; }
is_dns() { [[ "$1" =~ ^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]]; }
for name in "${HUB_NAMES[@]}"; do
  is_ipv4 "$name" || is_ipv6 "$name" || is_dns "$name" ||
    die "--hub-name '$name' is neither a DNS name nor an IP address"
done
for node in "${CLIENTS[@]}"; do
  [[ "$node" =~ ^[A-Za-z0-9._-]{1,64}$ ]] ||
    die "--client '$node': node ids are 1-64 characters of A-Z a-z 0-9 . _ -"
done

umask 077
mkdir -p "$OUTDIR"
chmod 0700 "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- the CA ----------------------------------------------------------------
CA_PEM="$OUTDIR/ca.pem"
CA_KEY="$OUTDIR/ca.key"
if [ -e "$CA_PEM" ] || [ -e "$CA_KEY" ]; then
  [ -f "$CA_PEM" ] && [ -f "$CA_KEY" ] || die "$OUTDIR has only one of ca.pem/ca.key; move it away first"
  echo "$PROG: reusing the CA in $CA_PEM"
else
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$CA_KEY" -out "$CA_PEM" -days "$CA_DAYS" -sha256 \
    -subj "/O=hiddify-sync/CN=hiddify-sync CA $(date -u +%Y-%m-%d)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>"$WORK/err" || { cat "$WORK/err" >&2; die "creating the CA failed"; }
  chmod 0600 "$CA_KEY"
  chmod 0644 "$CA_PEM"
  echo "$PROG: created a new CA: $CA_PEM (key $CA_KEY)"
fi

# `openssl ca` (not `x509 -req`) because it takes explicit start/end dates,
# which OpenSSL 3.0 needs for --expired.
mkdir -p "$WORK/ca/new"
: >"$WORK/ca/index.txt"
cat >"$WORK/ca.cnf" <<EOF
[ca]
default_ca = local_ca
[local_ca]
database = $WORK/ca/index.txt
new_certs_dir = $WORK/ca/new
certificate = $CA_PEM
private_key = $CA_KEY
rand_serial = yes
default_md = sha256
policy = any_policy
unique_subject = no
email_in_dn = no
copy_extensions = none
[any_policy]
organizationName = optional
commonName = supplied
EOF

# issue NAME CN EXTENSIONS_TEXT: writes $OUTDIR/NAME.pem and NAME.key.
issue() {
  local name="$1" cn="$2" ext="$3"
  local pem="$OUTDIR/$name.pem" key="$OUTDIR/$name.key"
  if [ $FORCE -eq 0 ] && { [ -e "$pem" ] || [ -e "$key" ]; }; then
    echo "$PROG: keeping the existing $pem (use --force to replace it)"
    return 0
  fi
  printf '%s\n' "$ext" >"$WORK/$name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/$name.key" -out "$WORK/$name.csr" -subj "/O=hiddify-sync/CN=$cn" \
    2>"$WORK/err" || { cat "$WORK/err" >&2; die "creating the key for $name failed"; }
  local validity=(-days "$DAYS")
  if [ $EXPIRED -eq 1 ]; then
    validity=(-startdate "$(date -u -d '2 days ago' +%Y%m%d%H%M%SZ)"
              -enddate "$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)")
  fi
  openssl ca -batch -notext -config "$WORK/ca.cnf" -in "$WORK/$name.csr" \
    -out "$WORK/$name.pem" "${validity[@]}" -extfile "$WORK/$name.ext" \
    2>"$WORK/err" || { cat "$WORK/err" >&2; die "signing $name failed"; }
  install -m 0600 "$WORK/$name.key" "$key"
  install -m 0644 "$WORK/$name.pem" "$pem"
  echo "$PROG: issued $pem (CN=$cn$([ $EXPIRED -eq 1 ] && echo ', already EXPIRED'))"
}

suffix=""
[ $EXPIRED -eq 1 ] && suffix="-expired"

# --- the hub's server certificate -------------------------------------------
names=("${HUB_NAMES[@]}")
[ $DEFAULT_NAMES -eq 1 ] && names+=(localhost 127.0.0.1 ::1)
[ ${#names[@]} -gt 0 ] || die "no --hub-name and --no-default-names: the hub certificate would name nothing"
san=""
declare -A seen=()
for name in "${names[@]}"; do
  [ -z "${seen[$name]:-}" ] || continue
  seen[$name]=1
  if is_ipv4 "$name" || is_ipv6 "$name"; then entry="IP:$name"; else entry="DNS:$name"; fi
  san="${san:+$san,}$entry"
done
hub_cn="${HUB_NAMES[0]:-hiddify-sync-hub}"
if [ ! -e "$OUTDIR/hub$suffix.pem" ] || [ ${#HUB_NAMES[@]} -gt 0 ] || [ $FORCE -eq 1 ]; then
  issue "hub$suffix" "$hub_cn" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
subjectAltName=$san"
fi

# --- client certificates ----------------------------------------------------
for node in "${CLIENTS[@]}"; do
  issue "client-$node$suffix" "$node" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer"
done

# --- what goes where ---------------------------------------------------------
cat <<EOF

Next steps (files in $OUTDIR):
  On the parent (hub), as root:
    install -d -m 0755 /etc/hiddify-sync/tls
    install -m 0644 $OUTDIR/hub$suffix.pem /etc/hiddify-sync/tls/hub.pem
    install -m 0600 $OUTDIR/hub$suffix.key /etc/hiddify-sync/tls/hub.key
  hub.toml [tls]: cert_file = "/etc/hiddify-sync/tls/hub.pem", key_file = "/etc/hiddify-sync/tls/hub.key"
  To require client certificates, also copy ca.pem and set
    client_ca_file = "/etc/hiddify-sync/tls/ca.pem", require_client_cert = true
  On every child (reporter):
    install -m 0644 $OUTDIR/ca.pem /etc/hiddify-sync/tls/ca.pem   (reporter.toml [hub] ca_file)
    with client certificates: client-<node>.pem / .key (0600) as [hub] cert_file / key_file
  Reporters must reach the hub by a name in its certificate: $san
  Keep ca.key off the servers (it signs new certificates; re-run this script
  with --client <node> in this directory to add a node).
EOF
