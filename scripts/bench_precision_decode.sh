#!/usr/bin/env bash
# Decoding at each precision on one trained model, in one run: translates Multi30k test2016 with
# beam 5 at fp32, int8 (and bf16 where the CPU has bf16 matrix units), and prints per precision
# the wall-clock seconds of the whole `nmt translate` process (loading included), sentences/s,
# output words/s, peak RSS and cased BLEU (sacreBLEU 13a) against the reference, with the CPU
# model. Compare the ratios: absolute times move with the machine's load.
#
# Usage: scripts/bench_precision_decode.sh MODEL_DIR [THREADS]
# Environment: NMT (the binary; default build/nmt), PRECISIONS (default "fp32 int8", plus bf16
#              when /proc/cpuinfo has amx_bf16 or avx512_bf16), SRC / REF (default test2016).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NMT="${NMT:-$ROOT/build/nmt}"
if [[ $# -lt 1 ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
MODEL="$1"
THREADS="${2:-1}"
[[ -x "$NMT" ]] || { echo "bench_precision_decode.sh: $NMT not found; build it first (scripts/setup.sh)" >&2; exit 1; }
if [[ -z "${SRC:-}" || -z "${REF:-}" ]]; then
  "$ROOT/scripts/get_data.sh" >/dev/null
  SRC="$ROOT/data/multi30k/test_2016_flickr.de"
  REF="$ROOT/data/multi30k/test_2016_flickr.en"
fi
if [[ -z "${PRECISIONS:-}" ]]; then
  PRECISIONS="fp32 int8"
  if grep -qwE "amx_bf16|avx512_bf16" /proc/cpuinfo; then PRECISIONS="$PRECISIONS bf16"; fi
fi
[[ -x /usr/bin/time ]] || "$ROOT/scripts/install_packages.sh" bench_precision_decode.sh time

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "CPU: $("$ROOT/scripts/cpu.sh"), $THREADS thread(s); model $MODEL"
echo "source: $SRC ($(wc -l < "$SRC") sentences), beam 5"
echo "| precision | seconds | sentences/s | output words/s | peak RSS | BLEU |"
echo "|---|---|---|---|---|---|"
for p in $PRECISIONS; do
  /usr/bin/time -f "%e %M" -o "$OUT/$p.time" "$NMT" translate -m "$MODEL" -i "$SRC" -o "$OUT/$p.hyp" \
    --beam 5 --threads "$THREADS" --precision "$p" 2> "$OUT/$p.log" || { cat "$OUT/$p.log" >&2; exit 1; }
  read -r secs rss_kb < "$OUT/$p.time"
  bleu=$("$NMT" eval --hyp "$OUT/$p.hyp" --ref "$REF" --metrics bleu 2>/dev/null | sed -nE 's/^BLEU[^=]*= *([0-9.]+).*/\1/p')
  awk -v p="$p" -v s="$secs" -v n="$(wc -l < "$SRC")" -v w="$(wc -w < "$OUT/$p.hyp")" -v r="$rss_kb" -v b="$bleu" \
    'BEGIN { printf "| %s | %.1f | %.1f | %.0f | %.2f GB | %s |\n", p, s, n / s, w / s, r / 1048576, b }'
done
