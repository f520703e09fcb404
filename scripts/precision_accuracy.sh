#!/usr/bin/env bash
# Issue 14's accuracy check of mixed precision: trains one config at each precision for the same
# number of updates, the runs side by side on one thread each (so their speeds compare), then
# prints per precision: the validation perplexity at the last update, test2016 BLEU and chrF2 of
# best.pt (beam 5; lowest validation perplexity, normally the last validation), the median
# training target tokens/s over the log lines, and the training process's peak RSS, with the CPU
# model. bf16 pays only where the CPU has bf16 units (AVX512-BF16 or AMX); elsewhere LibTorch
# emulates it, slowly.
#
# Usage: scripts/precision_accuracy.sh CONFIG STEPS [PRECISION...]   (default: fp32 bf16)
#   e.g. scripts/precision_accuracy.sh configs/multi30k_transformer.yaml 1000
# Environment: NMT (default build/nmt), OUT (default runs/precision/<config name>).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if (($# < 2)); then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
CONFIG="$1"
STEPS="$2"
shift 2
(($# > 0)) || set -- fp32 bf16
NMT="${NMT:-build/nmt}"
OUT="${OUT:-runs/precision/$(basename "$CONFIG" .yaml)}"
[[ -x "$NMT" ]] || { echo "precision_accuracy.sh: $NMT not found; build it first (scripts/setup.sh)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || scripts/install_packages.sh precision_accuracy.sh time
scripts/get_data.sh >/dev/null
SRC=data/multi30k/test_2016_flickr.de
REF=data/multi30k/test_2016_flickr.en
mkdir -p "$OUT"

pids=()
for p in "$@"; do
  rm -rf "${OUT:?}/$p"
  /usr/bin/time -f '%M' -o "$OUT/$p.rss_kb" "$NMT" train -c "$CONFIG" --set train.model_dir="$OUT/$p" \
    --set train.precision="$p" --set train.threads=1 --set train.max_time=0 --set train.max_steps="$STEPS" \
    --set train.stop_metric=perplexity --set train.patience=100 > "$OUT/$p.out" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
if ((status != 0)); then
  for p in "$@"; do tail -3 "$OUT/$p.out" >&2; done
  exit 1
fi

echo "CPU: $("$ROOT/scripts/cpu.sh"); $CONFIG, $STEPS updates, one thread per run, runs side by side"
echo "| precision | validation ppl at update $STEPS | test2016 BLEU (beam 5) | chrF2 | training target tokens/s (median) | peak RSS |"
echo "| --- | --- | --- | --- | --- | --- |"
for p in "$@"; do
  log="$OUT/$p/train.log"
  ppl=$(grep -E "validation step $STEPS " "$log" | tail -1 | sed -nE 's/.* ppl ([0-9.]+).*/\1/p')
  tps=$(grep -E '^\S+ \S+ \[nmt\] \[info\] step [0-9]+ ' "$log" | sed -nE 's/.* ([0-9]+) tgt tok\/s.*/\1/p' | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }')
  rss=$(awk '{ printf "%.2f GB", $1 / 1048576 }' "$OUT/$p.rss_kb")
  "$NMT" translate -m "$OUT/$p" -i "$SRC" -o "$OUT/$p.hyp" --beam 5 --threads 1 2>/dev/null
  scores=$("$NMT" eval --hyp "$OUT/$p.hyp" --ref "$REF" --metrics bleu chrf 2>/dev/null)
  bleu=$(sed -nE 's/^BLEU[^=]*= *([0-9.]+).*/\1/p' <<<"$scores" | head -1)
  chrf=$(sed -nE 's/^chrF[^=]*= *([0-9.]+).*/\1/p' <<<"$scores" | head -1)
  echo "| $p | ${ppl:-?} | $bleu | $chrf | ${tps:-?} | $rss |"
done
