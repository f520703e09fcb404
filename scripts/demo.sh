#!/usr/bin/env bash
# The whole pipeline on real data: set up, fetch Multi30k, train the default RNN config under a
# wall-clock budget, translate test2016 with beam 5, print BLEU and chrF.
# Usage: scripts/demo.sh [MINUTES]   (training budget, default 20; the whole demo ~30 minutes)
# The full configuration (55-minute budget) is: build/nmt train -c configs/multi30k_rnn.yaml
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINUTES="${1:-20}"
MODEL="${NMT_DEMO_DIR:-$ROOT/runs/demo}"
cd "$ROOT"
scripts/setup.sh --no-tests
scripts/get_data.sh
NMT=build/nmt
if [[ -f "$MODEL/best.pt" ]]; then
  echo "demo.sh: $MODEL already holds a trained model; translating with it (delete it to retrain)"
else
  $NMT train -c configs/multi30k_rnn.yaml --set train.max_time="$MINUTES" --set train.model_dir="$MODEL"
fi
HYP="$MODEL/test_2016_flickr.hyp.en"
time $NMT translate -m "$MODEL" -i data/multi30k/test_2016_flickr.de -o "$HYP" --beam 5
echo "== Multi30k test2016 German->English (beam 5; cased sacreBLEU 13a):"
$NMT eval --hyp "$HYP" --ref data/multi30k/test_2016_flickr.en --metrics bleu chrf
