#!/usr/bin/env bash
# Speed benchmark of the Multi30k model configs (RNN, Transformer, ConvS2S) on this machine, with
# `nmt bench` (see include/nmt/cli/bench_cmd.h). For each config it prints, measured in one process:
#   training target tokens/s (fixed number of updates on real Multi30k batches, after warm-up),
#   the fp32 GEMM ceiling (at::mm) and the achieved training GFLOP/s as a fraction of it,
#   beam-5 translation target tokens/s and sentences/s (first 300 test2016 sentences),
#   peak resident memory, and the top operators by self CPU time in a few profiled updates.
# Translation uses a freshly initialised model (its outputs run to the maximum length 1.5·|x|+10),
# unless --trained is given and runs/multi30k_{rnn,transformer,convs2s} hold trained models.
# Takes about 7 minutes on 2 cores; builds nothing heavy itself.
#
# Usage: scripts/bench.sh [--trained] [nmt bench options, e.g. --threads 2 --steps 20]
# Environment: NMT (the binary; default build/nmt, built with scripts/setup.sh --no-tests if missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NMT="${NMT:-$ROOT/build/nmt}"
TRAINED=0
if [[ "${1:-}" == "--trained" ]]; then TRAINED=1; shift; fi

if [[ ! -x "$NMT" ]]; then
  echo "bench.sh: $NMT not found; building it with scripts/setup.sh --no-tests" >&2
  "$ROOT/scripts/setup.sh" --no-tests
fi
"$ROOT/scripts/get_data.sh" >/dev/null
cd "$ROOT"

echo "# nmt bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -m); command: scripts/bench.sh $*"
for name in multi30k_rnn multi30k_transformer multi30k_convs2s; do
  args=(bench -c "configs/$name.yaml" --work-dir runs/bench --sentences 300 --beam 5)
  if [[ $TRAINED == 1 && -f "runs/$name/best.pt" ]]; then args+=(-m "runs/$name"); fi
  echo
  "$NMT" "${args[@]}" "$@"
done
