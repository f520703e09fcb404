#!/usr/bin/env bash
# Set up (install missing packages), build, and run every test through ctest; then, when the whole
# suite runs (no arguments), the fuzz smoke: scripts/fuzz.sh runs the libFuzzer targets
# $NMT_FUZZ_SMOKE_TARGETS (default all four: fuzz_config fuzz_metrics fuzz_corpus fuzz_checkpoint;
# their clang build and 10 s runs take about 2 minutes) for $NMT_FUZZ_SMOKE_SECONDS each (default
# 10; 0 skips the smoke) from their seeds, and a crash or a failed build fails the run.
# Prints one line per test while it runs; on failure, each failing test's output after the run;
# one line per fuzz target; ctest's summary line ("N% tests passed, M tests failed out of K") last.
# Usage: scripts/test.sh [CTEST ARGS...]   e.g. scripts/test.sh -R Variational
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${NMT_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
cd "$BUILD"
LOG="$BUILD/ctest.log"
status=0
ctest --output-on-failure -j "$(nproc)" "$@" > "$LOG" 2>&1 || status=$?
# Progress lines (one per test), without the failing tests' output.
grep -E '^ *[0-9]+/[0-9]+ Test +#' "$LOG" || true
if ((status != 0)); then
  echo
  echo "=== output of the failing tests ==="
  # With --output-on-failure ctest prints a failing test's output right after its result line,
  # until the next test starts or finishes, or the summary begins.
  awk '/^ *[0-9]+\/[0-9]+ Test +#/ { show = ($0 ~ /\*\*\*(Failed|Exception|Timeout)|Not Run/) }
       /^ *Start +[0-9]+: / || /tests passed, .* tests failed out of/ { show = 0 }
       show' "$LOG"
  echo "=== failing tests ==="
  sed -n '/^The following tests FAILED:/,$p' "$LOG" | grep -v '^Errors while running CTest' || true
fi
SMOKE="${NMT_FUZZ_SMOKE_SECONDS:-10}"
read -r -a SMOKE_TARGETS <<< "${NMT_FUZZ_SMOKE_TARGETS:-fuzz_config fuzz_metrics fuzz_corpus fuzz_checkpoint}"
if (($# == 0)) && ((SMOKE > 0)); then
  echo
  fuzz_log="$BUILD/fuzz-smoke.log"
  start=$SECONDS
  "$ROOT/scripts/fuzz.sh" "$SMOKE" "${SMOKE_TARGETS[@]}" > "$fuzz_log" 2>&1 || { status=1; tail -20 "$fuzz_log"; }
  grep '^fuzz.sh: fuzz_' "$fuzz_log" || true
  echo "fuzz smoke: $((SECONDS - start)) s in all (build and runs; log: $fuzz_log)"
fi
grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+|^No tests were found' "$LOG" | tail -1 || true
exit "$status"
