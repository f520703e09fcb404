#!/usr/bin/env bash
# Install the Debian packages nmt needs (only those missing) and build it in Release mode.
# Idempotent: a second run installs nothing and rebuilds only what changed.
# Usage: scripts/setup.sh [--no-tests]      (build directory: build/, or $NMT_BUILD_DIR)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${NMT_BUILD_DIR:-$ROOT/build}"
TESTS=ON
[[ "${1:-}" == "--no-tests" ]] && TESTS=OFF

PACKAGES=(
  g++ cmake ninja-build pkg-config
  libtorch-dev            # LibTorch 1.13 (C++ API)
  libgloo-dev             # headers of Gloo, LibTorch's CPU back end for data-parallel training (c10d)
  libopenblas0-pthread    # BLAS for LibTorch: without it matrix products are ~20x slower
  libtcmalloc-minimal4    # malloc of the nmt executable: less memory when decoding (README)
  libsentencepiece-dev    # subword models (loaded in isolation, see README)
  libcli11-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
  libicu-dev              # Unicode categories for sacreBLEU's intl tokeniser and chrF
  libcairo2-dev fonts-dejavu-core   # attention pictures (translate --attention-out, nmt align)
  libcpp-httplib-dev nlohmann-json3-dev   # HTTP server and JSON of `nmt serve`
  libgtest-dev
  hyperfine time          # benchmarks
  wrk                     # HTTP load generator of scripts/bench_serve.sh
)
"$ROOT/scripts/install_packages.sh" setup.sh "${PACKAGES[@]}"

# LibTorch uses whatever libblas.so.3 Debian's alternatives select: make sure it is OpenBLAS.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
if [[ "$blas" != *openblas* ]]; then
  echo "setup.sh: warning: libblas.so.3 resolves to '$blas', not OpenBLAS; LibTorch will be slow" >&2
fi

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNMT_BUILD_TESTS=$TESTS >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
echo "setup.sh: built $BUILD/nmt"
