#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (README, second command).
#   1. install dependencies (tools/install-deps.sh, needs root)
#   2. build and run every suite (unit, integration, man, fuzz) in build/
#   3. build again with AddressSanitizer + UndefinedBehaviorSanitizer in
#      build-asan/ and run the unit and integration suites there
#   4. fuzz the wire decoder for a bounded time (FUZZ_SECONDS, default 60)
# Exits non-zero if anything failed; the last line says how many passed.
set -uo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh || exit 1

status=0
passed=0
failed=0

count_results() {  # $1 = build dir: adds its testlog.json to the totals
  local log="$1/meson-logs/testlog.json"
  [ -f "$log" ] || return 0
  local p f
  p=$(grep -c '"result": "OK"' "$log" || true)
  f=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
  passed=$((passed + p))
  failed=$((failed + f))
}

run_suite_in() {  # $1 = build dir, $2.. = extra meson setup args
  local dir="$1"; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" || return 1
  fi
  # TARGETS: only what the chosen suites run (the sanitizer build skips
  # the FUSE binaries; on 2 cores every build minute counts).
  ninja -C "$dir" ${TARGETS:-} || return 1
  meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 1 ${SUITES:-} || return 1
}

echo "=== build/ (debugoptimized): all suites"
run_suite_in build || status=1
count_results build

echo "=== build-asan/ (ASan + UBSan): unit and integration suites"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
SUITES="--suite unit --suite integration --no-suite fs" \
TARGETS="tests/unit_tests netnode/shardfs-node tools/shardctl" \
  run_suite_in build-asan -Db_sanitize=address,undefined -Db_lundef=false || status=1
count_results build-asan

if [ -x tests/fuzz/run.sh ]; then
  echo "=== fuzz: wire decoder for ${FUZZ_SECONDS:-60} s"
  if bash tests/fuzz/run.sh "${FUZZ_SECONDS:-60}"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); status=1
  fi
fi

[ "$failed" -gt 0 ] && status=1
echo "shardfs: $passed passed, $failed failed"
exit $status
