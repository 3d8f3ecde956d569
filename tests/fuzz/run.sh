#!/usr/bin/env bash
# Fuzzes the wire codec and the node's request handler with libFuzzer for a
# while; fails on any crash.
#
# usage: tests/fuzz/run.sh [SECONDS [TARGET...]]
#   SECONDS  total time, split evenly over the targets (default 60)
#   TARGET   wire, node (default both)
#
# Sets up build-fuzz (clang, ASan + UBSan, -fsanitize=fuzzer-no-link on
# every file so the netnode library is instrumented too) if it is missing,
# builds only the fuzz targets, and runs each over a copy of its corpus
# (tests/fuzz/corpus/<target>/), so the tree stays clean.
# FUZZ_GROW_CORPUS=1 merges new interesting inputs back into the checked-in
# corpus (for a developer, never for CI). A crashing input is kept in
# build-fuzz/fuzz-artifacts/; replay it with
#   build-fuzz/tests/fuzz/<wire_decode_fuzz|node_request_fuzz> FILE
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 2 ]; then
  echo "usage: $0 [SECONDS [wire|node ...]]" >&2
  exit 2
fi
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wire node)

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build-fuzz
cov_flag=-fsanitize=fuzzer-no-link

if [ ! -f "$build/build.ninja" ]; then
  CXX=clang++ meson setup "$build" "$root" -Dfuzz=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dtests=true -Dcpp_args="$cov_flag"
elif ! meson introspect --buildoptions "$build" | grep -q -- "$cov_flag"; then
  # An older build-fuzz instrumented only the codec files.
  meson configure "$build" -Dcpp_args="$cov_flag" >/dev/null
fi

per=$((seconds / ${#targets[@]}))
work=$(mktemp -d "${TMPDIR:-/tmp}/shardfs-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/fuzz-artifacts"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=0
for t in "${targets[@]}"; do
  case $t in
    wire) fuzzer=$build/tests/fuzz/wire_decode_fuzz; max_len=70000 ;;
    node) fuzzer=$build/tests/fuzz/node_request_fuzz; max_len=8192 ;;
    *) echo "unknown target $t (wire, node)" >&2; exit 2 ;;
  esac
  ninja -C "$build" "tests/fuzz/$(basename "$fuzzer")" >"$work/build-$t.log" 2>&1 || {
    cat "$work/build-$t.log" >&2
    exit 1
  }
  corpus=$root/tests/fuzz/corpus/$t
  mkdir -p "$work/$t"
  cp -R "$corpus"/. "$work/$t/"

  set +e
  "$fuzzer" -max_total_time="$per" -max_len=$max_len -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/$t-" "$work/$t" >"$work/$t.log" 2>&1
  rc=$?
  set -e

  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$work/$t.log" >&2
    echo "fuzz $t: FAILED (exit $rc); crashing input in $build/fuzz-artifacts/" >&2
    failed=1
    continue
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/$t.log" | tail -n 1)
  if [ "${FUZZ_GROW_CORPUS:-0}" = 1 ]; then
    "$fuzzer" -merge=1 -max_len=$max_len -timeout=10 "$corpus" "$work/$t" \
      >"$work/$t-merge.log" 2>&1
    echo "fuzz $t: corpus now $(find "$corpus" -type f | wc -l) files"
  fi
  echo "fuzz $t: ${runs:-?} runs in ${per} s, no crash"
done
exit $failed
