#!/usr/bin/env bash
# A/B speed comparison of two nmt executables (e.g. a copy of the binary before a change, and
# build/nmt after it) in one run on one machine: `nmt bench` with the same arguments, alternating
# A, B, A, B, ... for ROUNDS rounds, so that a drift in the machine's load hits both. Prints the
# CPU model, each run's summary figures (peak resident memory included), and per round the ratio
# B/A of training target tokens/s and of beam-search output tokens/s.
#
# Usage: scripts/bench_ab.sh NMT_A NMT_B ROUNDS [nmt bench arguments...]
#   e.g. scripts/bench_ab.sh runs/bin_before/nmt build/nmt 2 -c configs/multi30k_transformer.yaml \
#          --threads 1 --warmup 1 --steps 6 --profile-steps 1 --sentences 20
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if (($# < 3)); then sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; fi
A=$1 B=$2 ROUNDS=$3
shift 3
"$ROOT/scripts/get_data.sh" >/dev/null
echo "CPU: $("$ROOT/scripts/cpu.sh"), $(nproc) cores; nmt bench $*"
field() { sed -nE "s/.* $1=([0-9.]+).*/\1/p" <<<"$2"; }
for ((r = 1; r <= ROUNDS; ++r)); do
  declare -A train decode
  for side in A B; do
    bin=$A
    [[ $side == B ]] && bin=$B
    output=$("$bin" bench "$@" 2>&1) || true
    summary=$(grep '^summary:' <<<"$output") || { echo "bench_ab.sh: $bin bench failed:" >&2; tail -5 <<<"$output" >&2; exit 1; }
    train[$side]=$(field train_tgt_tok_s "$summary")
    decode[$side]=$(field decode_tgt_tok_s "$summary")
    echo "round $r $side ($bin): training ${train[$side]} target tokens/s, beam ${decode[$side]} output tokens/s, peak $(field peak_rss_mb "$summary") MB"
  done
  awk -v ta="${train[A]}" -v tb="${train[B]}" -v da="${decode[A]}" -v db="${decode[B]}" -v r="$r" \
    'BEGIN { printf "round %d ratio B/A: training %.3f, beam search %.3f\n", r, tb / ta, db / da }'
done
