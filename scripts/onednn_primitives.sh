#!/usr/bin/env bash
# What oneDNN's primitive creation costs a bf16 (or int8) run: runs `nmt` with ONEDNN_VERBOSE=2
# and sums oneDNN's own report of every primitive it created (a cache miss: the kernels are
# generated for that exact shape) and every one it found in its primitive cache, by kind of
# product: 2-D products whose row count varies with the batch (forward and input gradients),
# 2-D weight gradients (the reduction over the batch's rows varies), 3-D batched products
# (attention). Then the time the products themselves ran, and nmt's own last output line.
# Every batch has other shapes, so most products of a training update are created anew; nmt
# bounds the cache to 32 primitives (ONEDNN_PRIMITIVE_CACHE_CAPACITY, README "bf16 training
# memory"); set the variable to try another bound. fp32 products (OpenBLAS) create nothing.
#
# Usage: scripts/onednn_primitives.sh NMT_ARGS...
#   e.g. scripts/onednn_primitives.sh bench -c configs/multi30k_transformer.yaml \
#          --set train.precision=bf16 --threads 2 --warmup 3 --steps 30 --profile-steps 1 \
#          --sentences 1 --profile-sentences 0
# Environment: NMT (the binary; default build/nmt).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NMT="${NMT:-$ROOT/build/nmt}"
if [[ $# -lt 1 ]]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
[[ -x "$NMT" ]] || { echo "onednn_primitives.sh: $NMT not found; build it first (scripts/setup.sh)" >&2; exit 1; }
"$ROOT/scripts/get_data.sh" >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "CPU: $("$ROOT/scripts/cpu.sh"), $(nproc) cores; nmt $*"
ONEDNN_VERBOSE=2 "$NMT" "$@" >"$log" 2>&1 || { echo "onednn_primitives.sh: nmt failed:" >&2; grep -v '^onednn_verbose' "$log" | tail -5 >&2; exit 1; }
# Lines: onednn_verbose,<create:cache_miss|create:cache_hit|exec>,cpu,<primitive>,<impl>,<prop>,
# <memory formats, e.g. src_bf16::blocked:ab:f0 ...>,<attributes>,<aux>,<shapes src:weights:dst,
# e.g. 2400x256:256x768:2400x768 or 240x40x64:240x64x40:240x40x40>,<ms>
awk -F, '
  $1 != "onednn_verbose" { last = $0; next }
  {
    split($(NF - 1), op, ":"); n = split(op[1], a, "x")
    # A weight gradient dYᵀ·X reads its first operand transposed (memory tag "ba").
    if (n != 2) kind = "3-D batched products"
    else if ($0 ~ /src_[a-z0-9]+::blocked:ba:/) kind = "2-D weight gradients"
    else kind = "2-D products"
  }
  $2 == "create:cache_miss" { miss[kind]++; miss_ms[kind] += $NF; misses++; create_ms += $NF }
  $2 == "create:cache_hit" { hit[kind]++; hits++ }
  $2 == "exec" { execs++; exec_ms += $NF }
  END {
    printf "%-22s %8s %12s %8s\n", "kind", "created", "creating ms", "reused"
    for (k in miss) printf "%-22s %8d %12.1f %8d\n", k, miss[k], miss_ms[k], hit[k]
    printf "%-22s %8d %12.1f %8d\n", "all", misses, create_ms, hits
    printf "products run: %d, %.1f ms; creating took %.1f%% of creating + running\n", execs, exec_ms,
           (create_ms + exec_ms > 0 ? 100 * create_ms / (create_ms + exec_ms) : 0)
    print "nmt: " last
  }' "$log"
