#!/usr/bin/env bash
# Set up (install missing packages), build, and run every test through ctest.
# Prints one line per test while it runs; on failure, each failing test's output after the run;
# ctest's summary line ("N% tests passed, M tests failed out of K") comes last.
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
grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+|^No tests were found' "$LOG" | tail -1 || true
exit "$status"
