#!/usr/bin/env bash
# Times `nmt eval` on 3,000 sentences: Multi30k val + test (+ the first train lines to reach
# 3,000) scored against itself and against a shuffled copy of itself (a "bad system").
# Uses hyperfine when installed, else /usr/bin/time. Assumes the binary at build/nmt.
# With SACREBLEU set to a command that runs sacreBLEU 2.x (not a Debian package, so not installed
# here; e.g. SACREBLEU="python3 -m sacrebleu" with a checkout on PYTHONPATH), the same scorings by
# sacreBLEU are timed in the same hyperfine run, and the ratio sacreBLEU/nmt of each is printed.
#
#   scripts/bench_eval.sh [LANG]        # LANG = de (default) or en
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NMT="${NMT:-$ROOT/build/nmt}"
DATA="${DATA:-$ROOT/../shared/data/multi30k}"
[[ -d "$DATA" ]] || DATA=/work/shared/data/multi30k
LANG_SUFFIX="${1:-de}"
N=3000

[[ -x "$NMT" ]] || { echo "error: $NMT not found; build first (cmake --build build)" >&2; exit 1; }
for f in val test_2016_flickr train; do
  [[ -f "$DATA/$f.$LANG_SUFFIX" ]] || { echo "error: $DATA/$f.$LANG_SUFFIX missing" >&2; exit 1; }
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
awk -v n="$N" 'NR > n { exit } { print }' \
  "$DATA/val.$LANG_SUFFIX" "$DATA/test_2016_flickr.$LANG_SUFFIX" "$DATA/train.$LANG_SUFFIX" > "$WORK/ref.txt"
# A fixed pseudo-random permutation, so that every run scores the same "system".
awk 'BEGIN { srand(12345) } { printf "%.12f\t%s\n", rand(), $0 }' "$WORK/ref.txt" |
  sort -k1,1 | cut -f2- > "$WORK/shuffled.txt"
echo "corpus: $(wc -l < "$WORK/ref.txt") sentences, $(wc -w < "$WORK/ref.txt") words ($LANG_SUFFIX)"

declare -a NAMES=(
  "BLEU, hyp = ref"
  "BLEU, shuffled hyp"
  "BLEU + chrF2 + chrF2++ (two runs), shuffled hyp"
  "BLEU + chrF2, --confidence (1000 resamples)"
  "BLEU + chrF2, --paired-bs (1000 resamples)"
)
declare -a CMDS=(
  "$NMT eval --hyp $WORK/ref.txt --ref $WORK/ref.txt"
  "$NMT eval --hyp $WORK/shuffled.txt --ref $WORK/ref.txt"
  "$NMT eval --hyp $WORK/shuffled.txt --ref $WORK/ref.txt --metrics bleu chrf && $NMT eval --hyp $WORK/shuffled.txt --ref $WORK/ref.txt --metrics chrf --chrf-word-order 2"
  "$NMT eval --hyp $WORK/shuffled.txt --ref $WORK/ref.txt --metrics bleu chrf --confidence"
  "$NMT eval --hyp $WORK/shuffled.txt --hyp2 $WORK/ref.txt --ref $WORK/ref.txt --metrics bleu chrf --paired-bs"
)

echo
echo "== scores =="
for i in "${!CMDS[@]}"; do
  echo "-- ${NAMES[$i]}"
  bash -c "${CMDS[$i]}"
done

# Start-up alone (the front end; no LibTorch), timed but not printed.
NAMES+=("nmt --help" "nmt --version")
CMDS+=("$NMT --help > /dev/null" "$NMT --version > /dev/null")

# sacreBLEU's runs of the first four scorings (its CLI takes the references first).
SB_PAIRS=()
if [[ -n "${SACREBLEU:-}" ]]; then
  SB_NAMES=("BLEU, hyp = ref" "BLEU, shuffled hyp" "BLEU + chrF2 + chrF2++ (two runs), shuffled hyp"
            "BLEU + chrF2, --confidence (1000 resamples)")
  SB_CMDS=(
    "$SACREBLEU $WORK/ref.txt -i $WORK/ref.txt"
    "$SACREBLEU $WORK/ref.txt -i $WORK/shuffled.txt"
    "$SACREBLEU $WORK/ref.txt -i $WORK/shuffled.txt -m bleu chrf && $SACREBLEU $WORK/ref.txt -i $WORK/shuffled.txt -m chrf --chrf-word-order 2"
    "$SACREBLEU $WORK/ref.txt -i $WORK/shuffled.txt -m bleu chrf --confidence"
  )
  echo
  echo "== scores by sacreBLEU ($SACREBLEU) =="
  for i in "${!SB_CMDS[@]}"; do
    echo "-- ${SB_NAMES[$i]}"
    bash -c "${SB_CMDS[$i]}" | grep -o '"score": [0-9.]*\|"name": "[^"]*"' | paste -sd' ' -
    SB_PAIRS+=("$i")
    NAMES+=("sacreBLEU: ${SB_NAMES[$i]}"); CMDS+=("${SB_CMDS[$i]} > /dev/null")
  done
fi

echo
echo "== timings ($("$ROOT/scripts/cpu.sh")) =="
if command -v hyperfine > /dev/null; then
  args=()  # hyperfine subtracts the time of the shell it starts each command in
  for i in "${!CMDS[@]}"; do args+=(-n "${NAMES[$i]}" "${CMDS[$i]}"); done
  hyperfine --warmup 1 --runs 10 --style basic --export-json "$WORK/times.json" "${args[@]}"
  if ((${#SB_PAIRS[@]} > 0)); then
    echo
    echo "== sacreBLEU / nmt, mean wall-clock time of whole processes (same hyperfine run) =="
    python3 - "$WORK/times.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
for name, t in r.items():
    if name.startswith("sacreBLEU: ") and name[11:] in r:
        n = r[name[11:]]
        print(f"{name[11:]}: nmt {n * 1e3:.1f} ms, sacreBLEU {t * 1e3:.1f} ms, {t / n:.1f}x")
PY
  fi
else
  for i in "${!CMDS[@]}"; do
    /usr/bin/time -f "${NAMES[$i]}: %e s wall, %M KiB max RSS" bash -c "${CMDS[$i]} > /dev/null"
  done
fi
