#!/usr/bin/env bash
# Fuzzes the wire codec with libFuzzer for a while; fails on any crash.
#
# usage: tests/fuzz/run.sh [SECONDS]     (default 60)
#
# Sets up build-fuzz (clang, ASan + UBSan) if it is missing, builds only the
# fuzz target, and runs it over a copy of tests/fuzz/corpus/wire/, so the
# tree stays clean. FUZZ_GROW_CORPUS=1 merges new interesting inputs back
# into the checked-in corpus (for a developer, never for CI). A crashing
# input is kept in build-fuzz/fuzz-artifacts/; replay it with
#   build-fuzz/tests/fuzz/wire_decode_fuzz FILE
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build-fuzz
corpus=$root/tests/fuzz/corpus/wire
fuzzer=$build/tests/fuzz/wire_decode_fuzz

if [ ! -f "$build/build.ninja" ]; then
  CXX=clang++ meson setup "$build" "$root" -Dfuzz=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dtests=true
fi
ninja -C "$build" tests/fuzz/wire_decode_fuzz

work=$(mktemp -d "${TMPDIR:-/tmp}/shardfs-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$build/fuzz-artifacts"
cp -R "$corpus"/. "$work/corpus/"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

set +e
"$fuzzer" -max_total_time="$seconds" -max_len=70000 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$build/fuzz-artifacts/" "$work/corpus" >"$work/log" 2>&1
rc=$?
set -e

if [ "$rc" -ne 0 ]; then
  tail -n 60 "$work/log" >&2
  echo "fuzz: FAILED (exit $rc); crashing input in $build/fuzz-artifacts/" >&2
  exit 1
fi

runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/log" | tail -n 1)
if [ "${FUZZ_GROW_CORPUS:-0}" = 1 ]; then
  "$fuzzer" -merge=1 -max_len=70000 -timeout=10 "$corpus" "$work/corpus" \
    >"$work/merge.log" 2>&1
  echo "fuzz: corpus now $(find "$corpus" -type f | wc -l) files"
fi
echo "fuzz: ${runs:-?} runs, no crash"
