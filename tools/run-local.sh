#!/usr/bin/env bash
# The product on an embedded default (README, first command):
#   installs dependencies, builds, starts a local 6-node cluster (k=4, m=2)
#   on 127.0.0.1 with data under $SHARDFS_HOME (default ./local-cluster),
#   mounts the drive at $SHARDFS_HOME/drive when the mount program is built,
#   and otherwise stores and fetches a file through the cluster.
# Stop everything with:  tools/run-local.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
home=${SHARDFS_HOME:-$root/local-cluster}
build=$root/build
shardctl=$build/tools/shardctl
shardfs=$build/fs/shardfs

stop() {
  if mountpoint -q "$home/drive" 2>/dev/null; then
    fusermount3 -u "$home/drive" || umount -l "$home/drive"
  fi
  # The daemon outlives the unmount while it takes its last metadata
  # snapshot (fs/SNAPSHOTS.md): the nodes must still be up for that.
  local i
  for i in $(seq 1 60); do
    pgrep -f "^$shardfs .*--config $home/client.conf" >/dev/null || break
    sleep 1
  done
  [ -x "$shardctl" ] && "$shardctl" cluster stop --dir "$home" || true
}

if [ "${1:-}" = "stop" ]; then
  stop
  exit 0
fi

bash tools/install-deps.sh
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null

mkdir -p "$home"
if ! "$shardctl" cluster status --dir "$home" >/dev/null 2>&1; then
  "$shardctl" cluster start --nodes 6 --k 4 --m 2 --dir "$home"
fi
"$shardctl" --config "$home/client.conf" nodes

if [ -x "$shardfs" ]; then
  mkdir -p "$home/drive"
  mountpoint -q "$home/drive" ||
    "$shardfs" --config "$home/client.conf" --state "$home/state" "$home/drive"
  echo
  echo "shardfs is mounted at $home/drive"
  echo "unmount with:  fusermount3 -u $home/drive"
  echo "stop all with: tools/run-local.sh stop"
else
  sample=$(mktemp)
  trap 'rm -f "$sample" "$sample.back"' EXIT
  head -c $((10 * 1024 * 1024 + 123)) /dev/urandom >"$sample"
  id=$("$shardctl" --config "$home/client.conf" put "$sample")
  "$shardctl" --config "$home/client.conf" get "$id" "$sample.back"
  cmp "$sample" "$sample.back"
  echo
  echo "stored and fetched 10 MiB through the cluster, byte-exact (object $id)"
  echo "cluster config: $home/client.conf   stop with: tools/run-local.sh stop"
fi
