#!/usr/bin/env bash
# Issue 15's comparison: one Transformer run on Multi30k that keeps an exponential moving average
# of its weights (train.ema_decay) and its last epoch checkpoints (train.keep_checkpoints), then
# test2016 BLEU (beam 5) of what the same training budget gives with each choice:
#   trained weights   the weights the optimizer reached at the last update (what a run without
#                     ema_decay ends with: the average never feeds back into training under the
#                     noam schedule, see CheckpointToolsCli.TranslationUsesTheMovingAverageOfTheWeights)
#   EMA               the moving average at the last update
#   average of last N the mean of the trained weights of the last N epoch checkpoints
#   average of EMAs   the mean of their moving averages
#
# Usage: scripts/weight_averaging_table.sh train [STEPS]   the run (default 2,000 updates)
#        scripts/weight_averaging_table.sh table [N...]    the table (the last N checkpoints, default 5)
# Environment: NMT (default build/nmt), RUN (default runs/weight_averaging/transformer),
#   THREADS (default 1), SAVE_EVERY (updates between numbered checkpoints besides the epoch ends;
#   default 0 = epoch ends only), KEEP (numbered checkpoints kept, default 5).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NMT="${NMT:-build/nmt}"
RUN="${RUN:-runs/weight_averaging/transformer}"
"$ROOT/scripts/get_data.sh" >/dev/null
SRC=data/multi30k/test_2016_flickr.de
REF=data/multi30k/test_2016_flickr.en

case "${1:-}" in
  train)
    mkdir -p "$(dirname "$RUN")"
    "$NMT" train -c configs/multi30k_transformer.yaml --set train.model_dir="$RUN" --set train.threads="${THREADS:-1}" \
      --set train.max_time=0 --set train.max_steps="${2:-2000}" --set train.ema_decay=0.999 \
      --set train.save_every="${SAVE_EVERY:-0}" --set train.keep_checkpoints="${KEEP:-5}" \
      --set train.patience=100
    ;;
  table)
    shift
    (($# > 0)) || set -- 5
    OUT="$RUN.compare"
    rm -rf "$OUT"
    mkdir -p "$OUT"
    "$NMT" average -o "$OUT/trained" --trained-weights "$RUN/last.pt" 2>/dev/null
    "$NMT" average -o "$OUT/ema" "$RUN/last.pt" 2>/dev/null
    variants=(trained ema)
    for N in "$@"; do
      "$NMT" average -o "$OUT/average$N" --trained-weights --last "$N" "$RUN" 2>/dev/null
      "$NMT" average -o "$OUT/average${N}_ema" --last "$N" "$RUN" 2>/dev/null
      variants+=("average$N" "average${N}_ema")
    done
    steps=$("$NMT" info -m "$RUN/last.pt" | sed -nE 's/^training: step ([0-9]+),.*/\1/p')
    echo "CPU: $("$ROOT/scripts/cpu.sh"); run $RUN, $steps updates"
    echo "| weights translated | test2016 BLEU (beam 5) | chrF |"
    echo "|---|---|---|"
    for v in "${variants[@]}"; do
      "$NMT" translate -m "$OUT/$v" -i "$SRC" -o "$OUT/$v.hyp" --beam 5 2>/dev/null
      scores=$("$NMT" eval --hyp "$OUT/$v.hyp" --ref "$REF" --metrics bleu chrf 2>/dev/null)
      bleu=$(sed -nE 's/^BLEU[^=]*= *([0-9.]+).*/\1/p' <<<"$scores" | head -1)
      chrf=$(sed -nE 's/^chrF[^=]*= *([0-9.]+).*/\1/p' <<<"$scores" | head -1)
      echo "| $v | $bleu | $chrf |"
    done
    ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
