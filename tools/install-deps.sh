#!/usr/bin/env bash
# Installs everything shardfs needs to build, run and test on Debian 12.
# Idempotent: packages already present are left alone. Needs root (apt).
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config cmake clang libclang-rt-14-dev
  # libraries (see README "Dependencies" for why each)
  libfuse3-dev fuse3 libzmq3-dev cppzmq-dev libisal-dev libsqlite3-dev
  libssl-dev doctest-dev libcli11-dev libspdlog-dev libfmt-dev
  libtomlplusplus-dev libcpp-httplib-dev
  # tests and benchmark
  sqlite3 rsync fio git python3 python3-docutils iproute2 procps psmisc
  util-linux kmod attr
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
