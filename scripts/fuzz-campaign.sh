#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz, docs/fuzzing.md) into
# ./build-fuzz and runs them one at a time on one core (nice 10), each for
# FUZZ_RUNS executions or else FUZZ_SECONDS seconds (default 600), then
# prints per harness: executions, exec/s, coverage (cov: edges, ft:
# features), corpus size and crashes. Exits non-zero if any harness crashed;
# the input that did is kept in build-fuzz/fuzz-artifacts/<name>/.
#
#   scripts/fuzz-campaign.sh [harness...]     # default: every tests/fuzz/*_fuzzer.cpp
#
# The corpus grows across campaigns in build-fuzz/fuzz-corpus/<name>,
# started from the committed seeds; FUZZ_SCRATCH=1 starts from the seeds
# alone in a scratch directory every time (scripts/run-fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true -Dtests=false \
    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi

harnesses=("$@")
if [ "${#harnesses[@]}" -eq 0 ]; then
  for f in tests/fuzz/*_fuzzer.cpp; do
    f=${f##*/}
    harnesses+=("${f%_fuzzer.cpp}")
  done
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("tests/fuzz/${h}_fuzzer"); done
nice -n 10 ninja -C build-fuzz -j1 "${targets[@]}" >/dev/null

if [ -n "${FUZZ_RUNS:-}" ]; then limit=(-runs="$FUZZ_RUNS"); else limit=(-max_total_time="${FUZZ_SECONDS:-600}"); fi
# FUZZ_SEED fixes libFuzzer's random choices, so that a test run retraces
# the same mutations (up to its time limit) instead of exploring new ground.
if [ -n "${FUZZ_SEED:-}" ]; then limit+=(-seed="$FUZZ_SEED"); fi
# libFuzzer checks every input for leaks itself; GLib's own (see the
# suppressions) would fail every harness that uses it, at exit or during
# that check.
export ASAN_OPTIONS=leak_check_at_exit=0
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp
scratch=""
if [ "${FUZZ_SCRATCH:-0}" = 1 ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
fi

failed=0
report=$(printf '%-12s %10s %8s %6s %7s %7s %8s\n' harness execs exec/s cov ft corpus crashes)
for h in "${harnesses[@]}"; do
  corpus=${scratch:-build-fuzz/fuzz-corpus}/$h
  artifacts=build-fuzz/fuzz-artifacts/$h
  mkdir -p "$corpus" "$artifacts"
  cp -n tests/fuzz/corpus/"$h"/* "$corpus"/
  log=build-fuzz/fuzz-artifacts/$h.log
  echo "fuzzing $h (${limit[*]})"
  status=0
  nice -n 10 build-fuzz/tests/fuzz/"${h}"_fuzzer "${limit[@]}" -print_final_stats=1 \
    -artifact_prefix="$artifacts"/ "$corpus" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  size=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  crashes=0
  if [ "$status" -ne 0 ]; then
    crashes=1
    failed=1
    echo "$h CRASHED; its log: $log"
    grep -E 'ERROR|check failed|SUMMARY|CRITICAL|WARNING \*\*|Test unit written' "$log" | head -n 10 || true
  fi
  report+=$'\n'$(printf '%-12s %10s %8s %6s %7s %7s %8s' "$h" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" \
    "${size:-?}" "$crashes")
done
echo "$report"
exit "$failed"
