"""The project's speed goals, judged on the JSON of one `hydranet bench --json FILE` run.

    hydranet bench --json runs/bench.json && python benchmarks/speed_goals.py runs/bench.json

The goals are the developers' (the issues'), not the users', so `hydranet bench` prints none;
each is judged only on cells that run measured, within that one run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BASELINE = "torch-reference"
PLAIN = ("plain-openvino-fp32", "plain-openvino-int8")  # the yardstick, not one of hydranet's engines
GOAL_SPEEDUP = 30.0          # fastest kitti6 engine vs the reference eager NCHW path, 192x640 batch 1
GOAL_INT8_FPS = {(192, 640): 100.0}
GOAL_VIDEO_RATIO = 0.80      # end to end / model-only, same backend


def check_goals(rows: list[dict[str, Any]], videos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each goal that the run measured: what it asks, what was measured, met or not."""
    goals = []
    cell = [r for r in rows if (r["height"], r["width"], r["batch"]) == (192, 640, 1)]
    base = next((r for r in cell if r["engine"] == BASELINE), None)
    others = [r for r in cell if r["engine"] != BASELINE and r["engine"] not in PLAIN]
    plain = next((r for r in cell if r["engine"] == "plain-openvino-int8"), None)
    if plain and others:
        best = min(others, key=lambda r: r["median_ms"])
        goals.append({"goal": "fastest at least as fast as the plain static INT8 export, 192x640 batch 1",
                      "measured": f"{best['engine']} {best['median_ms']:.1f} vs {plain['median_ms']:.1f} ms "
                                  f"({plain['median_ms'] / best['median_ms']:.2f}x)",
                      "met": best["median_ms"] <= plain["median_ms"]})
    if base and others:
        best = min(others, key=lambda r: r["median_ms"])
        speedup = base["median_ms"] / best["median_ms"]
        goals.append({"goal": f"fastest >= {GOAL_SPEEDUP:g}x the reference baseline, 192x640 batch 1",
                      "measured": f"{best['engine']} {speedup:.1f}x ({best['median_ms']:.1f} vs "
                                  f"{base['median_ms']:.1f} ms)",
                      "met": speedup >= GOAL_SPEEDUP})
    for (h, w), fps in GOAL_INT8_FPS.items():
        int8 = [r for r in rows if r["precision"] == "int8" and (r["height"], r["width"]) == (h, w)
                and r["engine"] not in PLAIN]
        if int8:
            best = max(int8, key=lambda r: r["fps"])
            goals.append({"goal": f"INT8 >= {fps:g} frames/s at {h}x{w}",
                          "measured": f"{best['engine']} batch {best['batch']}: {best['fps']:.1f} frames/s",
                          "met": best["fps"] >= fps})
    for v in videos:
        ratio = v["e2e_fps"] / v["model_fps"] if v["model_fps"] else 0.0
        goals.append({"goal": f"end-to-end video >= {100 * GOAL_VIDEO_RATIO:.0f}% of model-only ({v['engine']})",
                      "measured": f"{v['e2e_fps']:.1f} / {v['model_fps']:.1f} frames/s = {100 * ratio:.0f}%",
                      "met": ratio >= GOAL_VIDEO_RATIO})
    return goals


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    record = json.loads(Path(argv[0]).read_text())
    print(f"machine: {record.get('machine', {})}")
    for g in check_goals(record["rows"], record.get("video", [])):
        print(f"[{'met' if g['met'] else 'NOT met'}] {g['goal']}: {g['measured']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
