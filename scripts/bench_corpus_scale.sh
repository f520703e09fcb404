#!/usr/bin/env bash
# Corpora larger than memory (issue 12): a synthetic corpus of Multi30k's training set repeated
# REPEATS times (default 104: 3,016,000 pairs) is encoded by `nmt preprocess` into the binary,
# memory-mapped token file, then `nmt train` runs 100 updates of the Transformer config on it and,
# for comparison, on Multi30k itself. Prints the encoding rate (pairs/s), the token file's size,
# what the same pairs would take as the in-memory token vectors training used to hold, and the
# peak resident memory of each training run.
#
# Usage: scripts/bench_corpus_scale.sh [REPEATS]     (~10 minutes on 2 cores; ~1 GB of disk in runs/)
# Environment: NMT (the binary; default build/nmt)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NMT="${NMT:-$ROOT/build/nmt}"
REPEATS="${1:-104}"
cd "$ROOT"
scripts/get_data.sh > /dev/null
WORK="$ROOT/runs/corpus_scale"
mkdir -p "$WORK"
echo "# scripts/bench_corpus_scale.sh $REPEATS, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
  "$("$ROOT/scripts/cpu.sh")"

for side in de en; do
  if [[ ! -f "$WORK/train.$REPEATS.$side" ]]; then
    for ((i = 0; i < REPEATS; i++)); do cat "data/multi30k/train.$side"; done > "$WORK/train.$REPEATS.$side"
  fi
done
# One SentencePiece model (nmt bench's when there is one), so that only encoding is measured.
SPM="$WORK/spm.model"
if [[ ! -f "$SPM" && -f runs/bench/spm_unigram_8000.model ]]; then cp runs/bench/spm_unigram_8000.model "$SPM"; fi
if [[ ! -f "$SPM" ]]; then
  "$NMT" preprocess -c configs/multi30k_transformer.yaml --set train.model_dir="$WORK/spm_run" > /dev/null 2>&1
  cp "$WORK/spm_run/spm.model" "$SPM"
fi
common=(-c configs/multi30k_transformer.yaml --set data.spm_src="$SPM" --set data.spm_tgt="$SPM"
  --set train.max_steps=100 --set train.log_every=50 --set train.valid_every=100000
  --set train.stop_metric=perplexity --set train.valid_max_sentences=100 --set train.max_time=0)
big=(--set data.train_src="$WORK/train.$REPEATS.de" --set data.train_tgt="$WORK/train.$REPEATS.en")

rm -rf "$WORK/big" "$WORK/small"
pairs=$(wc -l < "$WORK/train.$REPEATS.de")
/usr/bin/time -f "%M %e" -o "$WORK/preprocess.time" "$NMT" preprocess "${common[@]}" "${big[@]}" \
  --set train.model_dir="$WORK/big" > "$WORK/preprocess.log" 2>&1
read -r pre_kb secs < "$WORK/preprocess.time"
tok=$(ls "$WORK"/big/corpus-*.tok)
tokens=$(sed -nE 's/.*; ([0-9]+) tokens, .*/\1/p' "$WORK/preprocess.log" | tail -1)
awk -v p="$pairs" -v s="$secs" -v b="$(stat -c %s "$tok")" -v t="$tokens" -v kb="$pre_kb" -v n="$(nproc)" 'BEGIN {
  printf "%d pairs encoded in %.0f s (%.0f pairs/s, %d threads, peak RSS %.0f MB); token file %.0f MB\n", p, s, p / s, n, kb / 1024, b / 1e6
  # Two std::vector<int64_t> a pair (24 bytes each, plus the Example index) and 8 bytes an id:
  # what training held before the token file.
  printf "the same pairs as in-memory token vectors: %.0f MB\n", (t * 8 + p * 56) / 1e6 }'

/usr/bin/time -f "%M %e" -o "$WORK/big.time" "$NMT" train "${common[@]}" "${big[@]}" \
  --set train.model_dir="$WORK/big" > "$WORK/big.log" 2>&1
/usr/bin/time -f "%M %e" -o "$WORK/small.time" "$NMT" train "${common[@]}" \
  --set train.model_dir="$WORK/small" > "$WORK/small.log" 2>&1
read -r big_kb big_s < "$WORK/big.time"
read -r small_kb small_s < "$WORK/small.time"
echo "nmt train, 100 updates: peak RSS $((small_kb / 1024)) MB on Multi30k (29,000 pairs), $((big_kb / 1024)) MB on $pairs pairs" \
  "(growth $(((big_kb - small_kb) / 1024)) MB); wall ${small_s} s vs ${big_s} s"
