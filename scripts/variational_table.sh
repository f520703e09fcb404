#!/usr/bin/env bash
# The converged comparison of issue 11 (Deng et al. 2018 on Multi30k de→en): soft Luong attention,
# variational enum (exact) and variational sample, same encoder/decoder sizes and data, no label
# smoothing, each trained until its validation metric stops improving (patience 3, at least 12
# epochs unless it stopped; lr halved after each validation without improvement).
#
# Usage: scripts/variational_table.sh start VARIANT...   train (or continue with --resume) in the
#                                                       background, one thread each; log in
#                                                       runs/variational/VARIANT.train.log
#        scripts/variational_table.sh status            where each run stands
#        scripts/variational_table.sh table             translate test2016 with each best.pt
#                                                       (beam 5) and print the README table
# VARIANT: soft | variational_enum | variational_sample
#   NMT_BIN  the nmt executable (default build/nmt; a copy lets you rebuild while runs go on)
#   NMT_VAR_DIR  where runs go (default runs/variational)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NMT="${NMT_BIN:-build/nmt}"
OUT="${NMT_VAR_DIR:-$ROOT/runs/variational}"
mkdir -p "$OUT"

config_of() {
  case "$1" in
    # The soft baseline: configs/multi30k_luong.yaml (the variational prior's score function) with
    # the variational configs' training settings.
    soft) echo "configs/multi30k_luong.yaml --set train.label_smoothing=0 --set train.max_time=0 \
--set train.max_epochs=30 --set train.stop_metric=perplexity --set train.patience=3 --set train.lr_patience=0 \
--set train.save_every=50" ;;
    variational_enum | variational_sample) echo "configs/multi30k_$1.yaml" ;;
    *) echo "unknown variant '$1' (soft | variational_enum | variational_sample)" >&2; exit 2 ;;
  esac
}

start() {
  local v=$1 dir="$OUT/$1"
  if grep -q "training finished" "$OUT/$v.train.log" 2>/dev/null; then echo "$v: finished"; return; fi
  if [[ -f "$dir/last.pt" ]]; then
    nohup "$NMT" train --resume "$dir" --set train.threads=1 >> "$OUT/$v.train.log" 2>&1 &
  else
    # shellcheck disable=SC2046
    nohup "$NMT" train -c $(config_of "$v") --set train.model_dir="$dir" --set train.threads=1 \
      > "$OUT/$v.train.log" 2>&1 &
  fi
  echo "$v: started (pid $!), log $OUT/$v.train.log"
}

status() {
  for log in "$OUT"/*.train.log; do
    [[ -f "$log" ]] || continue
    echo "== $(basename "$log" .train.log)"
    grep -E "validation step|training finished" "$log" | tail -3
  done
}

# Reads the last validation line of a log: exact validation ppl, ELBO bound, diagnostics.
field() { sed -nE "s/.*$1 ([0-9.]+%?).*/\1/p" <<<"$2"; }

table() {
  echo "| model | epochs | updates | training time | best validation ppl (exact) | ELBO ppl bound | H(prior) | H(q) | accuracy prior / q | test2016 BLEU |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for v in soft variational_enum variational_sample; do
    local log="$OUT/$v.train.log" dir="$OUT/$v"
    [[ -f "$dir/best.pt" ]] || continue
    local best
    best=$(grep "validation step" "$log" | grep -- "\*best\*" | tail -1)
    local done_line
    done_line=$(grep "training finished" "$log" | tail -1 || true)
    "$NMT" translate -m "$dir" -i data/multi30k/test_2016_flickr.de -o "$dir/test.hyp.en" --beam 5 --threads 2 \
      > /dev/null 2>&1
    local bleu
    bleu=$("$NMT" eval --hyp "$dir/test.hyp.en" --ref data/multi30k/test_2016_flickr.en | sed -nE 's/^BLEU = ([0-9.]+).*/\1/p')
    echo "| $v | $(field epoch "$best" | tr -d ':') | $(field step "$best") | $(sed -nE 's/.* in ([0-9:]+);.*/\1/p' <<<"$done_line") \
| $(sed -nE 's/.*: loss [0-9.]+ ppl ([0-9.]+).*/\1/p' <<<"$best") | $(field "ELBO ppl bound" "$best") \
| $(field "H\\(prior\\)" "$best") | $(field "H\\(q\\)" "$best") \
| $(field "accuracy prior" "$best") / $(field " q" "$best") | $bleu |"
  done
}

case "${1:-}" in
  start) shift; for v in "$@"; do config_of "$v" > /dev/null; start "$v"; done ;;
  status) status ;;
  table) table ;;
  *) sed -n '2,18p' "$0"; exit 2 ;;
esac
