#!/usr/bin/env bash
# A/B speed comparison of two nmt executables (e.g. a copy of the binary before a change, and
# build/nmt after it) in one run on one machine: `nmt bench` with the same arguments, alternating
# A, B, A, B, ... for ROUNDS rounds, so that a drift in the machine's load hits both. Prints the
# CPU model, each run's summary figures (peak resident memory included), and per round the ratio
# B/A of training target tokens/s and of beam-search output tokens/s.
#
# With --concurrent first, A and B run at the same time instead, one thread each, each pinned to
# its own core (taskset; the cores swap every round): on a machine whose speed drifts by more
# than the change being measured (other tenants, clock boost), both sides then see the same
# conditions. The cores' shared cache and memory are split between them, so the figures are
# those of two loaded cores, not of one run alone.
#
# --set-a KEY=VALUE and --set-b KEY=VALUE (repeatable) add a config override to one side only, so
# that one binary can be compared with itself under two settings, e.g. bf16 against fp32 training
# (issue 14's target: bf16 >= 2x fp32 on an AMX machine). The last line gives the mean ratios.
#
# Usage: scripts/bench_ab.sh [--concurrent] [--set-a K=V]... [--set-b K=V]... NMT_A NMT_B ROUNDS
#          [nmt bench arguments...]
#   e.g. scripts/bench_ab.sh runs/bin_before/nmt build/nmt 2 -c configs/multi30k_transformer.yaml \
#          --threads 1 --warmup 1 --steps 6 --profile-steps 1 --sentences 20
#        scripts/bench_ab.sh --set-a train.precision=fp32 --set-b train.precision=bf16 build/nmt \
#          build/nmt 3 -c configs/multi30k_transformer.yaml --threads 2 --warmup 3 --steps 15 \
#          --profile-steps 1 --sentences 20 --profile-sentences 0
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
CONCURRENT=0
declare -a ONLY_A=() ONLY_B=()
while (($#)); do
  case $1 in
    --concurrent) CONCURRENT=1; shift ;;
    --set-a|--set-b)
      (($# >= 2)) && [[ $2 == *=* ]] || { echo "bench_ab.sh: $1 needs KEY=VALUE" >&2; usage; }
      if [[ $1 == --set-a ]]; then ONLY_A+=(--set "$2"); else ONLY_B+=(--set "$2"); fi
      shift 2 ;;
    *) break ;;
  esac
done
(($# >= 3)) || usage
A=$1 B=$2 ROUNDS=$3
shift 3
if ((CONCURRENT)); then
  command -v taskset >/dev/null || { echo "bench_ab.sh: --concurrent needs taskset (util-linux)" >&2; exit 1; }
  (($(nproc) >= 2)) || { echo "bench_ab.sh: --concurrent needs two cores" >&2; exit 1; }
  for arg in "$@"; do
    [[ $arg == --threads* ]] && { echo "bench_ab.sh: --concurrent sets --threads 1 itself" >&2; exit 2; }
  done
fi
"$ROOT/scripts/get_data.sh" >/dev/null
echo "CPU: $("$ROOT/scripts/cpu.sh"), $(nproc) cores; nmt bench $*$( ((CONCURRENT)) && echo " (A and B at once, one thread each)")"
field() { sed -nE "s/.* $1=([0-9.]+).*/\1/p" <<<"$2"; }
summary_of() {  # the summary line of a bench output, or the failure
  grep '^summary:' <<<"$2" || { echo "bench_ab.sh: $1 bench failed:" >&2; tail -5 <<<"$2" >&2; exit 1; }
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for ((r = 1; r <= ROUNDS; ++r)); do
  declare -A train decode summary
  if ((CONCURRENT)); then
    core_a=$(((r + 1) % 2)) core_b=$((r % 2))
    taskset -c "$core_a" "$A" bench "$@" "${ONLY_A[@]}" --threads 1 >"$work/A" 2>&1 &
    pid_a=$!
    taskset -c "$core_b" "$B" bench "$@" "${ONLY_B[@]}" --threads 1 >"$work/B" 2>&1 &
    pid_b=$!
    wait "$pid_a" || true
    wait "$pid_b" || true
    summary[A]=$(summary_of "$A" "$(cat "$work/A")")
    summary[B]=$(summary_of "$B" "$(cat "$work/B")")
  fi
  for side in A B; do
    bin=$A only=("${ONLY_A[@]}")
    [[ $side == B ]] && bin=$B only=("${ONLY_B[@]}")
    if ((!CONCURRENT)); then
      output=$("$bin" bench "$@" "${only[@]}" 2>&1) || true
      summary[$side]=$(summary_of "$bin" "$output")
    fi
    train[$side]=$(field train_tgt_tok_s "${summary[$side]}")
    decode[$side]=$(field decode_tgt_tok_s "${summary[$side]}")
    echo "round $r $side ($bin${only[*]:+ ${only[*]}}): training ${train[$side]} target tokens/s, beam ${decode[$side]} output tokens/s, peak $(field peak_rss_mb "${summary[$side]}") MB"
  done
  awk -v ta="${train[A]}" -v tb="${train[B]}" -v da="${decode[A]}" -v db="${decode[B]}" -v r="$r" \
    'BEGIN { printf "round %d ratio B/A: training %.3f, beam search %.3f\n", r, tb / ta, db / da }' |
    tee -a "$work/ratios"
done
awk '{ t += $6; d += $9; n++ } END { printf "mean ratio B/A over %d rounds: training %.3f, beam search %.3f\n", n, t / n, d / n }' \
  "$work/ratios"
