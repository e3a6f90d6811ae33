#!/usr/bin/env bash
# The README's pictures: the bundled default on real frames (CamVid val in daylight; ACDC and
# BDD100K frames in fog, night, rain and snow; a KITTI frame with its camera). The frames are
# research-use data in ../shared and are never committed; the panels made from them are.
# Usage: bash tools/readme_pictures.sh [WEIGHTS]
set -euo pipefail
cd "$(dirname "$0")/.."
WEIGHTS=${1:-default}
DATA=../shared/data
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ADV=$DATA/adverse_frames
hydranet predict --weights "$WEIGHTS" --image-format png --out "$TMP/camvid" --panel-height 180 \
    $DATA/camvid/val/0016E5_07959.png $DATA/camvid/val/0016E5_08137.png
hydranet predict --weights "$WEIGHTS" --image-format png --out "$TMP/adverse" --panel-height 180 \
    $ADV/acdc_GP010475_frame_000300.jpg $ADV/acdc_GOPR0356_frame_000162.jpg \
    $ADV/acdc_GP010571_frame_000784.jpg $ADV/acdc_GP010176_frame_000643.jpg \
    $ADV/bdd100k_3c0e7240-96e390d2.jpg
# KITTI object 000008 with its calibrated camera: metric depth for that lens.
K=$DATA/realdepth_dev/intrinsics/mmdet3d_kitti_000008_image_2.txt
FX=$(awk 'NR==1{print $1}' "$K"); CX=$(awk 'NR==1{print $3}' "$K"); FY=$(awk 'NR==2{print $2}' "$K"); CY=$(awk 'NR==2{print $3}' "$K")
hydranet predict --weights "$WEIGHTS" --image-format png --out "$TMP/kitti" --panel-height 150 --intrinsics "$FX,$FY,$CX,$CY" \
    $DATA/realdepth_dev/images/mmdet3d_kitti_000008_image_2.png
mkdir -p docs/pictures
python tools/stack_panels.py docs/pictures/real_daylight.png "$TMP"/camvid/*_panel.png
python tools/stack_panels.py docs/pictures/real_weather.png \
    "$TMP"/adverse/acdc_GP010475_frame_000300_panel.png "$TMP"/adverse/acdc_GOPR0356_frame_000162_panel.png \
    "$TMP"/adverse/acdc_GP010571_frame_000784_panel.png "$TMP"/adverse/acdc_GP010176_frame_000643_panel.png \
    "$TMP"/adverse/bdd100k_3c0e7240-96e390d2_panel.png
python tools/stack_panels.py docs/pictures/real_kitti.png "$TMP"/kitti/*_panel.png
ls -la docs/pictures
