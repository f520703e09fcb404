#!/usr/bin/env bash
# Build the libFuzzer targets (clang, AddressSanitizer, UBSan; tests/fuzz/) and run each for
# SECONDS (default 60) from its seed corpus in tests/fuzz/corpus/. New inputs are kept in
# build-fuzz/corpus/, crashes in build-fuzz/findings/; exits non-zero when a target finds one.
# Usage: scripts/fuzz.sh [SECONDS]        (build directory: build-fuzz/, or $NMT_FUZZ_BUILD_DIR)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${NMT_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
TIME="${1:-60}"
# clang with libFuzzer's runtime, installed here (only fuzzing needs it; the build uses g++).
"$ROOT/scripts/install_packages.sh" fuzz.sh clang-14 libclang-rt-14-dev
CXX="$(command -v clang++-14 || command -v clang++)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX" \
      -DNMT_BUILD_FUZZERS=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
mkdir -p "$BUILD/findings"
status=0
for target in fuzz_config fuzz_metrics; do
  name="${target#fuzz_}"
  mkdir -p "$BUILD/corpus/$name"
  log="$BUILD/$target.log"
  if "$BUILD/$target" -max_total_time="$TIME" -print_final_stats=1 -artifact_prefix="$BUILD/findings/$target-" \
       "$BUILD/corpus/$name" "$ROOT/tests/fuzz/corpus/$name" >"$log" 2>&1; then
    result="no crash"
  else
    result="FINDING (see $log and $BUILD/findings/)"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz.sh: $target: $runs executions in ${TIME}s: $result"
done
exit $status
