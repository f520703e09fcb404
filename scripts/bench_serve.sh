#!/usr/bin/env bash
# Load benchmark of `nmt serve`: starts the server on MODEL_DIR (a free port), then drives it with
# wrk at 1, 4 and 16 concurrent connections, each request one sentence of Multi30k test2016
# (data/multi30k/test_2016_flickr.de, in turn), and prints requests/s and p50/p99 latency per level
# together with the CPU model. The server is stopped with SIGTERM at the end.
#
# Usage: scripts/bench_serve.sh MODEL_DIR [nmt serve options, e.g. --threads 2 --beam 5]
# Environment: NMT (the binary; default build/nmt), DURATION (seconds per level, default 20),
#              LEVELS (default "1 4 16"), SENTENCES (default data/multi30k/test_2016_flickr.de).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NMT="${NMT:-$ROOT/build/nmt}"
DURATION="${DURATION:-20}"
LEVELS="${LEVELS:-1 4 16}"
if [[ $# -lt 1 ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
MODEL="$1"
shift
command -v wrk >/dev/null || "$ROOT/scripts/install_packages.sh" bench_serve.sh wrk
[[ -x "$NMT" ]] || { echo "bench_serve.sh: $NMT not found; build it first (scripts/setup.sh)" >&2; exit 1; }
if [[ -z "${SENTENCES:-}" ]]; then
  "$ROOT/scripts/get_data.sh" >/dev/null
  SENTENCES="$ROOT/data/multi30k/test_2016_flickr.de"
fi

LOG=$(mktemp)
"$NMT" serve -m "$MODEL" --port 0 "$@" 2>"$LOG" &
SERVER=$!
cleanup() {
  if kill -0 "$SERVER" 2>/dev/null; then kill -TERM "$SERVER"; wait "$SERVER" || true; fi
  rm -f "$LOG"
}
trap cleanup EXIT
PORT=""
for _ in $(seq 1 600); do
  PORT=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$LOG" | head -1)
  [[ -n "$PORT" ]] && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$PORT" ]] || { echo "bench_serve.sh: the server logged no port:" >&2; cat "$LOG" >&2; exit 1; }
URL="http://127.0.0.1:$PORT"

echo "# nmt serve load benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# command: scripts/bench_serve.sh $MODEL $*"
echo "# CPU: $("$ROOT/scripts/cpu.sh"), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# server: $(grep -o 'listening on .*' "$LOG")"
echo "# requests: one sentence each from $SENTENCES; ${DURATION} s per level (after a 3 s warm-up)"
export BENCH_SENTENCES="$SENTENCES"
wrk -t1 -c1 -d3s -s "$ROOT/scripts/bench_serve.lua" "$URL" >/dev/null  # warm-up
printf '%-12s %s\n' "connections" "result"
for c in $LEVELS; do
  threads=$((c < 2 ? c : 2))
  line=$(wrk -t"$threads" -c"$c" -d"${DURATION}s" --timeout 30s -s "$ROOT/scripts/bench_serve.lua" "$URL" |
         sed -n 's/^RESULT //p')
  printf '%-12s %s\n' "$c" "$line"
done
served=$(curl -s "$URL/health" 2>/dev/null | sed -n 's/.*"served":\({[^}]*}\).*/\1/p' || true)
if [[ -n "$served" ]]; then echo "# served in all (warm-up included): $served"; fi
