#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (README, second command).
#   1. install dependencies (tools/install-deps.sh, needs root)
#   2. build and run every suite (unit, integration, man, fuzz) in build/
#   3. build again with AddressSanitizer + UndefinedBehaviorSanitizer in
#      build-asan/ (in the background, while step 2's suites run) and run
#      the unit and integration suites there
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

setup_and_build() {  # $1 = build dir, $2.. = extra meson setup args
  local dir="$1"; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" || return 1
  elif [ $# -gt 0 ]; then
    meson configure "$dir" "$@" >/dev/null || return 1
  fi
  # TARGETS: only what the chosen suites run (the sanitizer build skips
  # the FUSE binaries; on 2 cores every build minute counts).
  ninja -C "$dir" ${TARGETS:-} || return 1
}

run_suites_in() {  # $1 = build dir
  meson test -C "$1" --no-rebuild --print-errorlogs --num-processes 1 ${SUITES:-}
}

# The sanitizer build: -O1 (the usual level for ASan: much faster to
# compile than -O2, and it still inlines enough to keep tests quick).
ASAN_TARGETS="tests/unit_tests netnode/shardfs-node tools/shardctl"
asan_build() {
  TARGETS="$ASAN_TARGETS" setup_and_build build-asan \
    -Db_sanitize=address,undefined -Db_lundef=false -Doptimization=1
}

echo "=== build/ (debugoptimized)"
setup_and_build build || status=1

# Most suites wait on nodes, timers and FUSE far more than they compute, so
# the sanitizer build runs beside them at the lowest priority instead of
# after them: that hides most of its ten minutes of compiling on 2 cores.
asan_log=$(mktemp "${TMPDIR:-/tmp}/shardfs-asan-build.XXXXXX")
# setsid: its own process group, so the trap can stop ninja and compilers too.
setsid nice -n 19 bash -c "$(declare -f setup_and_build asan_build); ASAN_TARGETS='$ASAN_TARGETS'; asan_build" \
  >"$asan_log" 2>&1 &
asan_pid=$!
trap 'kill -- -$asan_pid 2>/dev/null; rm -f "$asan_log"' EXIT

if [ $status -eq 0 ]; then
  echo "=== build/: all suites"
  run_suites_in build || status=1
fi
count_results build

echo "=== build-asan/ (ASan + UBSan, -O1): unit and integration suites"
if wait $asan_pid; then
  tail -n 3 "$asan_log"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  SUITES="--suite unit --suite integration --no-suite fs" \
    run_suites_in build-asan || status=1
  count_results build-asan
else
  cat "$asan_log"
  echo "build-asan: the sanitizer build failed" >&2
  status=1
fi

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
