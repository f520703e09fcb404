#!/usr/bin/env bash
# Peak resident memory and seconds of whole `nmt translate` processes (beam 5, Multi30k
# test2016) for one or more nmt executables, alternating them for ROUNDS rounds in one run, at
# the model's default batch and at smaller or uncapped ones, and for a single sentence. Prints
# the CPU model and one line per run with the output's checksum (equal outputs, equal sums).
#
# Usage: scripts/bench_decode_memory.sh MODEL_DIR ROUNDS NMT [NMT...]
#   e.g. scripts/bench_decode_memory.sh runs/mem_t 2 runs/bin/nmt build/nmt
# Environment: THREADS (default 1). A binary that predates --batch-sentences skips that setting.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if (($# < 3)); then sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; fi
MODEL=$1 ROUNDS=$2
shift 2
"$ROOT/scripts/get_data.sh" >/dev/null
[[ -x /usr/bin/time ]] || "$ROOT/scripts/install_packages.sh" bench_decode_memory.sh time
SRC="$ROOT/data/multi30k/test_2016_flickr.de"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
head -1 "$SRC" > "$OUT/one.de"
SETTINGS=("one sentence|$OUT/one.de|" "defaults|$SRC|" "no sentence cap|$SRC|--batch-sentences 0"
          "batch-tokens 1000|$SRC|--batch-tokens 1000" "batch-tokens 500|$SRC|--batch-tokens 500")
echo "CPU: $("$ROOT/scripts/cpu.sh"), ${THREADS:-1} thread(s); model $MODEL"
for ((r = 1; r <= ROUNDS; ++r)); do
  for bin in "$@"; do
    for setting in "${SETTINGS[@]}"; do
      IFS='|' read -r name src args <<<"$setting"
      if [[ $args == *batch-sentences* ]] && ! "$bin" translate --help 2>/dev/null | grep -q -- --batch-sentences; then
        continue
      fi
      # shellcheck disable=SC2086  # $args: options, split on purpose
      /usr/bin/time -f "%e %M" -o "$OUT/time" "$bin" translate -m "$MODEL" -i "$src" -o "$OUT/hyp" --beam 5 \
        --threads "${THREADS:-1}" $args 2> "$OUT/log" || { cat "$OUT/log" >&2; exit 1; }
      read -r seconds kb < "$OUT/time"
      printf 'round %d %s, %s: %s s, peak %d MB, output %s\n' "$r" "$bin" "$name" "$seconds" $((kb / 1024)) \
        "$(md5sum < "$OUT/hyp" | cut -c1-8)"
    done
  done
done
