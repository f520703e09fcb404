#!/usr/bin/env bash
# Issue 14's open target in one command: bf16 training of the Transformer at least 2x its fp32
# speed on an Intel machine with AMX. Runs scripts/bench_ab.sh with one binary, fp32 (A) against
# bf16 (B), alternating, 2 threads, at the config's batches (2,500 target tokens) and at Marian's
# (4,900; README "Marian side by side"); then oneDNN's primitive creation in a bf16 run
# (scripts/onednn_primitives.sh) and a profile of two bf16 updates. Prints the CPU first: the
# target is for AMX (cpu.sh shows "amx_bf16"); on a CPU with AVX512-BF16 only, bf16 products
# run at about 2x fp32, which bounds the ratio there.
#
# Usage: scripts/bf16_target.sh [ROUNDS]   (default 3; about a minute per round on 2 cores)
# Environment: NMT (the binary; default build/nmt); FORCE=1 runs on a CPU without bf16 units.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROUNDS=${1:-3}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
NMT="${NMT:-build/nmt}"
[[ -x "$NMT" ]] || { echo "bf16_target.sh: $NMT not found; build it first (scripts/setup.sh)" >&2; exit 1; }
CPU="$(scripts/cpu.sh)"
echo "CPU: $CPU"
# Without bf16 units LibTorch emulates bf16 products (about 0.03x fp32 on an AMD EPYC Zen 3):
# one bf16 round would take about an hour and say nothing about the target.
if [[ $CPU == *"bf16 units: none"* && -z "${FORCE:-}" ]]; then
  echo "bf16_target.sh: this CPU has neither AMX nor AVX512-BF16, so bf16 is emulated here; the target" \
       "needs an AMX machine (FORCE=1 runs it anyway)" >&2
  exit 1
fi
BENCH=(-c configs/multi30k_transformer.yaml --threads 2 --warmup 3 --steps 15 --profile-steps 1
       --sentences 20 --profile-sentences 0)
for tokens in 2500 4900; do
  echo "== data.batch_tokens=$tokens: A = fp32, B = bf16 (the target: training B/A >= 2 on AMX)"
  scripts/bench_ab.sh --set-a train.precision=fp32 --set-b train.precision=bf16 "$NMT" "$NMT" "$ROUNDS" \
    "${BENCH[@]}" --set data.batch_tokens="$tokens"
done
echo "== oneDNN primitive creation, bf16, 30 updates"
NMT="$NMT" scripts/onednn_primitives.sh bench -c configs/multi30k_transformer.yaml --set train.precision=bf16 \
  --threads 2 --warmup 3 --steps 30 --profile-steps 1 --sentences 1 --profile-sentences 0
echo "== where a bf16 update's time goes (2 profiled updates; the nmt:: lines are the hand-written kernels)"
"$NMT" bench -c configs/multi30k_transformer.yaml --set train.precision=bf16 --threads 2 --warmup 3 --steps 2 \
  --profile-steps 2 --sentences 1 --profile-sentences 0 --top 25 | sed -n '/^profile of/,/outside any recorded/p'
