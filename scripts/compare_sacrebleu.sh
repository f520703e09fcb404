#!/usr/bin/env bash
# Differential check of `nmt eval` against a real sacreBLEU: scores the same files with both over a
# matrix of options (BLEU tokenisers, lowercasing, smoothing methods, one and two references,
# chrF / chrF++ variants, sentence level, bootstrap confidence and paired bootstrap) and compares
# the text output line by line, the version in the signature aside. Prints one line per case and
# "N passed, M failed" last; exits 1 on any difference.
#
# sacreBLEU is not a Debian package, so this script does not install it: point SACREBLEU at a
# command that runs it, e.g.
#   SACREBLEU="python3 -m sacrebleu" scripts/compare_sacrebleu.sh
#   (with a sacreBLEU 2.x checkout on PYTHONPATH and its Python dependencies installed)
# Hypotheses are made from Multi30k (DATA, default ../shared/data/multi30k): unrelated captions,
# references with words dropped, swapped, lowercased or blanked, German text for the intl tokeniser.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NMT="${NMT:-$ROOT/build/nmt}"
DATA="${DATA:-$ROOT/../shared/data/multi30k}"
[[ -d "$DATA" ]] || DATA="$ROOT/data/multi30k"
[[ -n "${SACREBLEU:-}" ]] || { echo "error: set SACREBLEU to a command that runs sacreBLEU 2.x" >&2; exit 2; }
[[ -x "$NMT" ]] || { echo "error: $NMT not found; build first" >&2; exit 2; }
read -r -a SB <<< "$SACREBLEU"

W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
for l in en de; do
  cp "$DATA/test_2016_flickr.$l" "$W/ref.$l"
  head -1000 "$DATA/val.$l" > "$W/other.$l"                       # unrelated captions
  # Every third word dropped, neighbours swapped on every fifth line, every 50th line empty.
  awk '{ if (NR % 50 == 0) { print ""; next }
         n = split($0, w, " "); s = ""
         for (i = 1; i <= n; i++) if (i % 3 != 0) s = s (s == "" ? "" : " ") w[i]
         if (NR % 5 == 0) { m = split(s, v, " "); if (m > 1) { t = v[1]; v[1] = v[2]; v[2] = t }
                            s = v[1]; for (i = 2; i <= m; i++) s = s " " v[i] }
         print s }' "$W/ref.$l" > "$W/drop.$l"
  # A second reference: lowercased, final punctuation removed, every 7th word repeated.
  awk '{ s = tolower($0); sub(/[.!?]+ *$/, "", s); n = split(s, w, " "); o = ""
         for (i = 1; i <= n; i++) { o = o (o == "" ? "" : " ") w[i]; if (i % 7 == 0) o = o " " w[i] }
         print o }' "$W/ref.$l" > "$W/ref2.$l"
done

pass=0 fail=0
# case NAME HYP_FILES(comma) REF_FILES(comma) OPTIONS...   (options in sacreBLEU's long spelling)
check() {
  local name="$1" hyps="$2" refs="$3"; shift 3
  local -a h r nmt_args sb_args
  IFS=, read -r -a h <<< "$hyps"; IFS=, read -r -a r <<< "$refs"
  nmt_args=(--hyp "${h[0]}"); sb_args=(-i "${h[@]}")
  ((${#h[@]} > 1)) && nmt_args+=(--hyp2 "${h[1]}")
  nmt_args+=(--ref "${r[@]}")
  for a in "$@"; do
    case "$a" in
      --metrics) nmt_args+=(--metrics); sb_args+=(--metrics) ;;
      *) nmt_args+=("$a"); sb_args+=("$a") ;;
    esac
  done
  local a_out b_out fmt=(--format json)
  [[ " $* " == *" --sentence-level "* ]] && fmt=(--score-only)   # sacreBLEU prints text there
  a_out="$("$NMT" eval "${nmt_args[@]}" "${fmt[@]}" 2>&1 | normalise)" || true
  b_out="$("${SB[@]}" "${r[@]}" "${sb_args[@]}" "${fmt[@]}" 2>/dev/null | normalise)" || true
  if [[ -n "$a_out" && "$a_out" == "$b_out" ]]; then
    pass=$((pass + 1)); echo "same: $name ($(printf '%s\n' "$a_out" | wc -l) values)"
  else
    fail=$((fail + 1)); echo "DIFFERENT: $name"
    diff <(printf '%s\n' "$a_out") <(printf '%s\n' "$b_out") | head -10 | sed 's/^/    /' || true
  fi
}

# Both tools' JSON (corpus scores; paired bootstrap) or score-only lines, as one value per line:
# numbers rounded to 4 decimals, signatures without their version field.
normalise() {
  python3 -c '
import json, re, sys
text = sys.stdin.read()
def num(x): return "null" if x is None else "%.4f" % float(x)
def sig(s): return re.sub(r"\|?version:[^|]*", "", s)
try:
    data = json.loads(text)
except ValueError:
    print(text.strip()); sys.exit()
out = []
if isinstance(data, dict) and "systems" in data:          # nmt --paired-bs
    data = [dict(system=s["name"], **{k: v for k, v in s.items() if isinstance(v, dict)})
            for s in data["systems"]]
for item in data if isinstance(data, list) else [data]:
    if "system" in item:                                    # paired bootstrap, one system
        for metric in sorted(k for k, v in item.items() if isinstance(v, dict)):
            m = item[metric]
            out.append(" ".join([metric] + [num(m.get(k)) for k in ("score", "mean", "ci", "p_value")]))
    else:                                                   # one corpus score
        out.append(" ".join([item["name"], num(item["score"]), sig(item["signature"]),
                             item.get("verbose_score", ""), num(item.get("confidence_mean")),
                             num(item.get("confidence_var"))]))
print("\n".join(out))'
}

for hyp in other drop ref2; do
  for tok in 13a intl char none zh; do
    check "BLEU tok=$tok hyp=$hyp" "$W/$hyp.en" "$W/ref.en" --tokenize "$tok" --width 4
  done
  check "BLEU lowercase hyp=$hyp" "$W/$hyp.en" "$W/ref.en" --lowercase --width 4
  for s in floor add-k none; do
    check "BLEU smooth=$s hyp=$hyp" "$W/$hyp.en" "$W/ref.en" --smooth-method "$s" --width 4
  done
  check "BLEU floor 0.3 hyp=$hyp" "$W/$hyp.en" "$W/ref.en" --smooth-method floor --smooth-value 0.3 --width 4
  check "BLEU 2 refs hyp=$hyp" "$W/$hyp.en" "$W/ref.en,$W/ref2.en" --width 4
  check "chrF2 hyp=$hyp" "$W/$hyp.en" "$W/ref.en" --metrics chrf --width 4
  check "chrF2++ hyp=$hyp" "$W/$hyp.en" "$W/ref.en" --metrics chrf --chrf-word-order 2 --width 4
  check "chrF whitespace lowercase beta 3 hyp=$hyp" "$W/$hyp.en" "$W/ref.en" \
    --metrics chrf --chrf-whitespace --chrf-lowercase --chrf-beta 3 --width 4
  check "chrF eps smoothing hyp=$hyp" "$W/$hyp.en" "$W/ref.en" --metrics chrf --chrf-eps-smoothing --width 4
  check "chrF2++ 2 refs hyp=$hyp" "$W/$hyp.en" "$W/ref.en,$W/ref2.en" --metrics chrf --chrf-word-order 2 --width 4
done
for hyp in other drop; do
  check "BLEU intl German hyp=$hyp" "$W/$hyp.de" "$W/ref.de" --tokenize intl --width 4
  check "chrF2++ German hyp=$hyp" "$W/$hyp.de" "$W/ref.de" --metrics chrf --chrf-word-order 2 --width 4
done
check "sentence-level BLEU" "$W/drop.en" "$W/ref.en" --sentence-level --width 4
check "sentence-level BLEU intl 2 refs" "$W/drop.de" "$W/ref.de,$W/ref2.de" --sentence-level --tokenize intl --width 4
check "sentence-level chrF2++" "$W/drop.en" "$W/ref.en" --sentence-level --metrics chrf --chrf-word-order 2 --width 4
check "BLEU + chrF2 --confidence" "$W/drop.en" "$W/ref.en" --metrics bleu chrf --confidence --width 4
check "BLEU + chrF2 --paired-bs" "$W/other.en,$W/drop.en" "$W/ref.en" --metrics bleu chrf --paired-bs --width 4

echo "$pass passed, $fail failed"
((fail == 0))
