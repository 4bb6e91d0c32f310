#!/usr/bin/env bash
# Installs everything hiddify-sync needs to build, test and run its demo, from
# Debian 12 packages only. Idempotent; run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates openssl curl jq
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libcurl4-openssl-dev default-libmysqlclient-dev libabsl-dev libsqlite3-dev
  nlohmann-json3-dev libtomlplusplus-dev libcpp-httplib-dev prometheus-cpp-dev
  libsystemd-dev libssl-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  mariadb-server mariadb-client
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
