#!/usr/bin/env bash
# The recorded CamVid run quoted in README "Train": train, then evaluate best weights on val.
# Usage: bash tools/record_camvid.sh [extra config overrides]
# Writes runs/camvid_record/{best.safetensors, train.csv, val.csv, eval_val.json, record.txt}.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/camvid_record
mkdir -p "$OUT"
start=$(date +%s)
hydranet train --config configs/examples/camvid_record.yaml "$@"
end=$(date +%s)
hydranet eval --weights "$OUT/best.safetensors" --dataset camvid --root ../shared/data/camvid --split val \
    --size 180x240 --per-class --json "$OUT/eval_val.json" | tee "$OUT/eval_val.txt"
{
  echo "command: hydranet train --config configs/examples/camvid_record.yaml $*"
  echo "train wall time: $((end - start)) s"
  echo "machine: $(nproc) CPU cores, torch $(python -c 'import torch; print(torch.__version__)')"
} | tee "$OUT/record.txt"
