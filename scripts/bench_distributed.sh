#!/usr/bin/env bash
# Data-parallel training on this machine (issue 12): the Transformer config trained as
#   1 process x 2 threads, accumulating 2 batches per update, against
#   2 processes x 1 thread (nmt train --nproc 2), one batch each per update,
# so both make the same updates of ~2 x 2,000 target tokens. For each it prints the target
# tokens/s of the training log lines after the first (warm-up) one and, for 2 processes, the
# exposed all-reduce time per update (the wait in the gradient reducer after the backward pass,
# which includes waiting for the slower rank) against the update time.
#
# Usage: scripts/bench_distributed.sh [UPDATES]     (default 120; ~2 x 5 minutes on 2 cores)
# Environment: NMT (the binary; default build/nmt), CONFIG (default configs/multi30k_transformer.yaml)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NMT="${NMT:-$ROOT/build/nmt}"
CONFIG="${CONFIG:-configs/multi30k_transformer.yaml}"
UPDATES="${1:-120}"
cd "$ROOT"
scripts/get_data.sh > /dev/null
WORK="$ROOT/runs/bench_distributed"
rm -rf "$WORK/one" "$WORK/two"
mkdir -p "$WORK"
echo "# scripts/bench_distributed.sh $UPDATES, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
  "$("$ROOT/scripts/cpu.sh"), config $CONFIG"

common=(-c "$CONFIG" --set train.max_steps="$UPDATES" --set train.log_every=20 --set train.valid_every=100000
  --set train.stop_metric=perplexity --set train.valid_max_sentences=100 --set train.max_time=0)
# One SentencePiece model for both runs (trained once, kept in $WORK; nmt bench's, when it has one).
if [[ ! -f "$WORK/spm/spm.model" && -f runs/bench/spm_unigram_8000.model ]]; then
  mkdir -p "$WORK/spm" && cp runs/bench/spm_unigram_8000.model "$WORK/spm/spm.model"
fi
if [[ ! -f "$WORK/spm/spm.model" ]]; then
  "$NMT" train "${common[@]}" --set train.model_dir="$WORK/spm" --set train.max_steps=1 > /dev/null 2>&1
fi
common+=(--set data.spm_src="$WORK/spm/spm.model" --set data.spm_tgt="$WORK/spm/spm.model")

# Mean of the tok/s figures (and all-reduce percentages) of the log lines after the first.
summary() {
  awk '/ step [0-9]+ epoch/ { n++; if (n == 1) next
         for (i = 1; i <= NF; i++) { if ($(i+1) == "tgt" && $(i+2) == "tok/s") { tok += $i; m++ }
                                     if ($i == "wait") { ms += $(i+1); gsub(/[()%]/, "", $(i+3)); pct += $(i+3) } } }
       END { if (m == 0) { print "no log lines"; exit }
             printf "%.0f target tok/s", tok / m
             if (ms > 0) printf "; all-reduce wait %.0f ms per update (%.1f%% of the update)", ms / m, pct / m
             printf "\n" }' "$1"
}

/usr/bin/time -f "%M" -o "$WORK/one.rss" "$NMT" train "${common[@]}" --set train.model_dir="$WORK/one" \
  --set train.threads=2 --set train.accum_steps=2 > /dev/null 2>&1
echo "1 process x 2 threads, accum 2: $(summary "$WORK/one/train.log"); peak RSS $(( $(cat "$WORK/one.rss") / 1024 )) MB"
/usr/bin/time -f "%M" -o "$WORK/two.rss" "$NMT" train "${common[@]}" --set train.model_dir="$WORK/two" \
  --set train.threads=1 --nproc 2 > /dev/null 2>&1
echo "2 processes x 1 thread:         $(summary "$WORK/two/train.log"); peak RSS of the largest process $(( $(cat "$WORK/two.rss") / 1024 )) MB"
