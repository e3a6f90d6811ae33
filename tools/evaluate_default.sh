#!/usr/bin/env bash
# Every figure of docs/MODEL_CARD.md for one weights file (default: the bundled model).
# Usage: bash tools/evaluate_default.sh [WEIGHTS]
# Writes runs/model_card/*.json and *.txt. The real data lives in ../shared beside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
WEIGHTS=${1:-default}
DATA=../shared/data
OUT=runs/model_card
mkdir -p "$OUT"
hydranet bench --help >/dev/null   # fail early if the install is broken
python -c "from hydranet.benchmark.machine import cpu_info, describe_cpu; print(describe_cpu(cpu_info()))" \
    | tee "$OUT/machine.txt"
# Real frames with LiDAR / stereo depth: metric (each frame's camera) and median-scaled, beside
# a constant and a row-only map on the same pixels.
hydranet eval --weights "$WEIGHTS" --dataset depth_folder --root $DATA/realdepth_dev \
    --json "$OUT/realdepth_dev.json" | tee "$OUT/realdepth_dev.txt"
# CamVid val, clean (per class) and under the weather corruptions.
hydranet eval --weights "$WEIGHTS" --dataset camvid --root $DATA/camvid --split val --per-class \
    --corrupt hydranet-rain,hydranet-fog,hydranet-night --severity 3 --json "$OUT/camvid_val.json" | tee "$OUT/camvid_val.txt"
# A synthetic drive never used for any choice, reported once.
hydranet demo --weights "$WEIGHTS" --seed 1 --frames 12 --out "$OUT/drive1" | tee "$OUT/drive1.txt"
# What INT8 costs with these weights.
python benchmarks/int8_accuracy.py --weights "$WEIGHTS" --json "$OUT/int8_accuracy.json" | tee "$OUT/int8_accuracy.txt"
