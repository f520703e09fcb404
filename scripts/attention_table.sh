#!/usr/bin/env bash
# The attention-family comparison in the README: trains soft Bahdanau, Luong global, local-p, hard,
# variational enum and variational sample on Multi30k de→en (configs/multi30k_<variant>.yaml: the
# same encoder/decoder sizes) with one and the same budget each. Two runs go at a time with one
# thread each, so every run gets one core. Then each translates test2016 with beam 5, and the
# script prints a Markdown table and each run's validation perplexity by update.
# Validation is perplexity only (every 200 updates, at epoch ends and at the end); best.pt = lowest
# perplexity.
#
# Usage: scripts/attention_table.sh [MINUTES] [UPDATES]
#   MINUTES  wall-clock budget per run (default 15)
#   UPDATES  if given, every run stops after this many updates instead (MINUTES stays a cap)
#   NMT_TABLE_VARIANTS="luong variational_enum ..."  which variants (default: all six)
#   NMT_BIN  the nmt executable (default build/nmt; a copy lets you rebuild while the table runs)
#   NMT_TABLE_DIR  where runs go (default runs/attention_table). A run whose model directory
#                  already holds best.pt is not retrained; delete the directory to start over.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINUTES="${1:-15}"
OUT="${NMT_TABLE_DIR:-$ROOT/runs/attention_table}"
UPDATES="${2:-0}"
read -r -a VARIANTS <<<"${NMT_TABLE_VARIANTS:-bahdanau luong local_p hard variational_enum variational_sample}"
cd "$ROOT"
scripts/setup.sh --no-tests
scripts/get_data.sh
NMT="${NMT_BIN:-build/nmt}"
TEST_SRC=data/multi30k/test_2016_flickr.de
TEST_REF=data/multi30k/test_2016_flickr.en
mkdir -p "$OUT"

run_variant() {
  local name=$1 dir="$OUT/$1"
  if [[ ! -f "$dir/best.pt" ]]; then
    "$NMT" train -c "configs/multi30k_$name.yaml" --set train.model_dir="$dir" \
      --set train.max_time="$MINUTES" --set train.max_epochs=1000 --set train.threads=1 \
      --set train.stop_metric=perplexity --set train.valid_every=200 --set train.patience=1000 \
      --set train.max_steps="$UPDATES" \
      >"$OUT/$name.train.log" 2>&1
  fi
  "$NMT" translate -m "$dir" -i "$TEST_SRC" -o "$dir/test.hyp.en" --beam 5 --threads 1 \
    >"$OUT/$name.translate.log" 2>&1
}

# A pool of two: the next variant starts as soon as either running one finishes.
running=0
for name in "${VARIANTS[@]}"; do
  if ((running == 2)); then
    wait -n
    running=1
  fi
  echo "attention_table.sh: training $name (budget: $MINUTES min$( ((UPDATES > 0)) && echo ", $UPDATES updates"))"
  run_variant "$name" &
  running=$((running + 1))
done
wait

# Fields of the trainer's log lines:
#   validation step K epoch E: loss L ppl P[ ELBO ppl bound B] (...)
#   training finished: REASON; N updates in H:MM:SS; best validation perplexity P at step K
echo
echo "| variant | updates | wall clock | epochs begun | best validation ppl | ELBO ppl bound | test2016 BLEU (beam 5) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for name in "${VARIANTS[@]}"; do
  log="$OUT/$name/train.log"
  updates=$(sed -n 's/.*training finished: .*; \([0-9]*\) updates in .*/\1/p' "$log" | tail -1)
  clock=$(sed -n 's/.*training finished: .* updates in \([0-9:]*\);.*/\1/p' "$log" | tail -1)
  best_step=$(sed -n 's/.*best validation perplexity .* at step \([0-9]*\).*/\1/p' "$log" | tail -1)
  best_line=$(grep "validation step $best_step epoch" "$log" | tail -1)
  epochs=$(grep "validation step" "$log" | tail -1 | sed 's/.*epoch \([0-9]*\):.*/\1/')
  ppl=$(sed 's/.*: loss [0-9.]* ppl \([0-9.]*\).*/\1/' <<<"$best_line")
  bound=$(sed -n 's/.*ELBO ppl bound \([0-9.]*\).*/\1/p' <<<"$best_line")
  bleu=$("$NMT" eval --hyp "$OUT/$name/test.hyp.en" --ref "$TEST_REF" | sed -n 's/^BLEU = \([0-9.]*\).*/\1/p')
  echo "| $name | $updates | $clock | $epochs | $ppl | ${bound:-–} | $bleu |"
done

echo
echo "Validation perplexity by update (step:ppl):"
for name in "${VARIANTS[@]}"; do
  curve=$(sed -n 's/.*validation step \([0-9]*\) epoch [0-9]*: loss [0-9.]* ppl \([0-9.]*\).*/\1:\2/p' \
    "$OUT/$name/train.log" | tr '\n' ' ')
  echo "  $name: $curve"
done
