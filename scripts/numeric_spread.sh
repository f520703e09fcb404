#!/usr/bin/env bash
# Trains every toy model that a learning test trains, under several numeric paths of this CPU
# (OpenBLAS kernels for another core type, ATen's kernels without vector extensions, oneDNN
# limited to SSE4.1), and prints per run: the epochs until the toy config's target perplexity on
# the training corpus (train.target_ppl), the last validation perplexity, and the BLEU of
# translating the training corpus. The learning tests' bounds are chosen from these figures
# (tests/cli/attention_cli_test.cpp, cli_test.cpp, transformer_cli_test.cpp).
#
# Usage: scripts/numeric_spread.sh [PATH_NAME...]     (default: every path)
#   NMT_SPREAD_VARIANTS="rnn hard"  only those variants
#   NMT_SPREAD_EXTRA="--set train.lr=1e-9"  extra overrides for every run (e.g. to see that a
#                                           model that does not learn misses the bounds)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NMT="${NMT_BINARY:-$ROOT/build/nmt}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"

declare -A PATHS=(
  [native]=""
  [openblas-haswell]="OPENBLAS_CORETYPE=Haswell"
  [openblas-sandybridge]="OPENBLAS_CORETYPE=Sandybridge"
  [aten-default]="ATEN_CPU_CAPABILITY=default"
  [onednn-sse41]="ONEDNN_MAX_CPU_ISA=SSE41 DNNL_MAX_CPU_ISA=SSE41"
)
ORDER=(native openblas-haswell openblas-sandybridge aten-default onednn-sse41)
(($#)) && ORDER=("$@")

# name | config | overrides: the same runs as the learning tests
declare -A CONFIG=(
  [rnn]=configs/toy_rnn.yaml
  [transformer]=configs/toy_transformer.yaml
  [convs2s]=configs/toy_convs2s.yaml
  [local_m_with_coverage]=configs/toy_local_m.yaml
  [local_p]=configs/toy_local_p.yaml
  [hard]=configs/toy_hard.yaml
  [variational_enum]=configs/toy_variational_enum.yaml
  [variational_sample]=configs/toy_variational_sample.yaml
  [variational_exact]=configs/toy_variational_enum.yaml
)
declare -A OVERRIDES=(
  [local_m_with_coverage]="--set model.coverage_penalty=0.1"
  [variational_exact]="--set model.variational_mode=exact --set model.attention_score=concat"
)
VARIANTS=(${NMT_SPREAD_VARIANTS:-rnn transformer convs2s local_m_with_coverage local_p hard variational_enum variational_sample variational_exact})

echo "CPU: $("$ROOT/scripts/cpu.sh")"
printf '%-22s %-21s %-7s %-8s %-10s %s\n' variant path epochs updates valid_ppl train_BLEU
for v in "${VARIANTS[@]}"; do
  for p in "${ORDER[@]}"; do
    dir="$WORK/$v-$p"
    # shellcheck disable=SC2086
    env ${PATHS[$p]} "$NMT" train -c "${CONFIG[$v]}" ${OVERRIDES[$v]:-} ${NMT_SPREAD_EXTRA:-} \
      --set train.model_dir="$dir" --set train.threads=1 > "$dir.log" 2>&1 || { echo "$v $p: training failed"; tail -3 "$dir.log"; continue; }
    last=$(grep 'validation step' "$dir.log" | tail -1)
    epoch=$(sed -E 's/.* epoch ([0-9]+):.*/\1/' <<< "$last")
    ppl=$(sed -E 's/.* ppl ([0-9.]+).*/\1/' <<< "$last")
    updates=$(sed -E 's/.*; ([0-9]+) updates in.*/\1/' <<< "$(grep 'training finished' "$dir.log")")
    env ${PATHS[$p]} "$NMT" translate -m "$dir" -i data/toy/train.de -o "$dir.hyp" --threads 1 > /dev/null 2>&1
    bleu=$("$NMT" eval --hyp "$dir.hyp" --ref data/toy/train.en | sed -nE 's/^BLEU = ([0-9.]+).*/\1/p')
    printf '%-22s %-21s %-7s %-8s %-10s %s\n' "$v" "$p" "$epoch" "$updates" "$ppl" "$bleu"
    rm -rf "$dir"
  done
done
