#!/usr/bin/env bash
# Kill a training run with SIGKILL at KILLS random moments (default 20), resume it each time, and
# check that it ends with the same weights as an uninterrupted run (issue 13). The run: the toy
# RNN with dropout 0.3 and the plateau schedule, 400 updates, last.pt every 7 updates, validation
# every 50 and at each epoch end, so kills land in updates, validations and checkpoint writes.
# Prints how many kills hit a running process, the stale files the resumed runs cleaned up, and
# both runs' weights digests (`nmt info`); exits non-zero when they differ.
#
# Usage: scripts/chaos.sh [KILLS]      (about 2 minutes on 2 cores)
# Environment: NMT (the binary; default build/nmt)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NMT="${NMT:-$ROOT/build/nmt}"
KILLS="${1:-20}"
cd "$ROOT"
scripts/get_data.sh > /dev/null
WORK="$ROOT/runs/chaos"
rm -rf "$WORK"
mkdir -p "$WORK"
echo "# scripts/chaos.sh $KILLS, $(date -u '+%Y-%m-%d %H:%M UTC'), $("$ROOT/scripts/cpu.sh")"
common=(-c configs/toy_rnn.yaml --set model.dropout=0.3 --set train.lr_schedule=plateau --set train.lr_patience=1
  --set train.target_ppl=0 --set train.max_steps=400 --set train.save_every=7 --set train.valid_every=50
  --set train.threads=1)

"$NMT" train "${common[@]}" --set train.model_dir="$WORK/whole" > "$WORK/whole.log" 2>&1
dir="$WORK/chaos"
start_or_resume() {
  if [[ -f "$dir/last.pt" ]]; then
    "$NMT" train --resume "$dir" >> "$WORK/chaos.log" 2>&1 &
  else
    rm -rf "$dir"  # killed before its first checkpoint: start again
    "$NMT" train "${common[@]}" --set train.model_dir="$dir" >> "$WORK/chaos.log" 2>&1 &
  fi
  pid=$!
}
hits=0
for ((k = 0; k < KILLS; k++)); do
  start_or_resume
  sleep "$(awk -v seed="$RANDOM" 'BEGIN { srand(seed); printf "%.2f", 0.3 + 2.7 * rand() }')"
  if kill -9 "$pid" 2> /dev/null; then hits=$((hits + 1)); fi
  wait "$pid" 2> /dev/null || true
done
for ((tries = 0; tries < 5; tries++)); do  # let it finish
  grep -q "training finished" "$dir/train.log" 2> /dev/null && break
  start_or_resume
  wait "$pid" || true
done
digest() { "$NMT" info -m "$1/last.pt" | sed -n 's/^weights digest: //p'; }
a=$(digest "$WORK/whole")
b=$(digest "$dir")
echo "$hits of $KILLS kills hit a running process; resumed runs removed $(grep -c 'a temporary file left by a run that was killed' "$WORK/chaos.log" || true) stale temporary files and took over $(grep -c 'stale lock' "$WORK/chaos.log" || true) stale locks"
echo "uninterrupted: $(grep 'training finished' "$WORK/whole/train.log" | sed 's/.*training finished: //')"
echo "killed:        $(grep 'training finished' "$dir/train.log" | tail -1 | sed 's/.*training finished: //')"
echo "weights digest: uninterrupted $a, killed and resumed $b"
if [[ -n "$a" && "$a" == "$b" ]]; then echo "chaos.sh: same final weights"; else echo "chaos.sh: the weights differ" >&2; exit 1; fi
