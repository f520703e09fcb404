#!/usr/bin/env bash
# Build the libFuzzer targets (clang, AddressSanitizer, UBSan; tests/fuzz/) and run each for
# SECONDS (default 60) from its seed corpus in tests/fuzz/corpus/<name>/. New inputs are kept in
# build-fuzz/corpus/, crashes in build-fuzz/findings/; every run's executions are appended to
# build-fuzz/executions.log (the project's totals: tests/fuzz/EXECUTIONS.md, kept by hand).
# Exits non-zero when a target finds a crash.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default: all four targets)
# Build directories: build-fuzz/ ($NMT_FUZZ_BUILD_DIR); fuzz_checkpoint links the models from the
# g++ build in build/ ($NMT_BUILD_DIR), built first when missing (tests/fuzz/CMakeLists.txt).
# NMT_FUZZ_JOBS: compile jobs for the fuzz build (default: all cores).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${NMT_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
MAIN="${NMT_BUILD_DIR:-$ROOT/build}"
TIME="${1:-60}"
shift || true
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(fuzz_config fuzz_metrics fuzz_corpus fuzz_checkpoint)
# clang with libFuzzer's runtime, installed here (only fuzzing needs it; the build uses g++).
"$ROOT/scripts/install_packages.sh" fuzz.sh clang-14 libclang-rt-14-dev
if [[ ! -f "$MAIN/build.ninja" ]]; then
  NMT_BUILD_DIR="$MAIN" "$ROOT/scripts/setup.sh"
fi
cmake --build "$MAIN" --target nmtlib nmt_spm >/dev/null  # fuzz_checkpoint links libnmtlib.a, all load libnmt_spm.so
CXX="$(command -v clang++-14 || command -v clang++)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX" \
      -DNMT_BUILD_FUZZERS=ON -DNMT_MAIN_BUILD_DIR="$MAIN" >/dev/null
cmake --build "$BUILD" -j "${NMT_FUZZ_JOBS:-$(nproc)}" --target "${TARGETS[@]}"
mkdir -p "$BUILD/findings"
status=0
for target in "${TARGETS[@]}"; do
  name="${target#fuzz_}"
  mkdir -p "$BUILD/corpus/$name"
  log="$BUILD/$target.log"
  if "$BUILD/$target" -max_total_time="$TIME" -timeout=60 -print_final_stats=1 \
       -artifact_prefix="$BUILD/findings/$target-" "$BUILD/corpus/$name" "$ROOT/tests/fuzz/corpus/$name" >"$log" 2>&1; then
    result="no crash"
  else
    result="FINDING (see $log and $BUILD/findings/)"
    status=1
  fi
  runs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz.sh: $target: $runs executions in ${TIME}s: $result"
  echo "$(date -u '+%Y-%m-%d %H:%M') $target $runs executions ${TIME}s $result" >> "$BUILD/executions.log"
done
exit $status
