"""Compare weights on several synthetic drives: how the default's candidates were chosen.

Each drive is rendered once per condition and every model runs on the same frames (the
scores are those ``hydranet demo --seed S --frames N`` prints for one model). Prints, per
model, the mean mIoU and abs rel per condition over the drives, the rain and night changes
against clear from those means, and each drive's night and rain abs rel change.

    python tools/compare_drives.py --seeds 15-22 \
        A=runs/default.safetensors F=runs/stage7/last.safetensors --json drives.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hydranet.errors import InputError
from hydranet.evaluation.drive import condition_gaps, score_drive
from hydranet.inference.predictor import Predictor


def parse_seeds(text: str) -> list[int]:
    """``15-22`` or ``1,3,5`` (or both: ``1-4,11``)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            seeds.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise InputError(f"--seeds {text!r}: use a range like 15-22 or a list like 1,3,5") from None
    return seeds


def parse_models(items: list[str]) -> dict[str, str]:
    models: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"{item!r}: give each model as NAME=WEIGHTS, e.g. A=runs/default.safetensors")
        models[name] = path
    return models


def mean_scores(per_drive: list[dict[str, dict]]) -> dict[str, dict[str, float]]:
    conditions = per_drive[0].keys()
    return {c: {k: sum(d[c][k] for d in per_drive) / len(per_drive) for k in ("miou", "abs_rel")}
            for c in conditions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="NAME=WEIGHTS", help="weights file or registered name")
    parser.add_argument("--seeds", default="15-22", help="drives (streets) to score (default: 15-22)")
    parser.add_argument("--frames", type=int, default=12, help="frames per condition (default: 12)")
    parser.add_argument("--json", type=Path, help="write every drive's scores here")
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        predictors = {name: Predictor(path) for name, path in parse_models(args.models).items()}
    except InputError as exc:
        print(f"compare_drives: {exc}", file=sys.stderr)
        return 2
    scores: dict[str, dict[int, dict]] = {name: {} for name in predictors}
    for seed in seeds:
        for name, result in score_drive(predictors, seed, args.frames, (360, 480)).items():
            scores[name][seed] = result
        print(f"drive {seed} scored", file=sys.stderr, flush=True)
    for name, drives in scores.items():
        means = mean_scores(list(drives.values()))
        gaps = condition_gaps(means)
        print(f"{name}: mean of drives {args.seeds}, mIoU % / abs rel: "
              + "  ".join(f"{c} {100 * m['miou']:.1f} / {m['abs_rel']:.4f}" for c, m in means.items()))
        print("    vs clear: " + "  ".join(f"{c} {g['miou']:+.2f} % / {g['abs_rel']:+.2f} %" for c, g in gaps.items()))
        per_drive = {seed: condition_gaps(r) for seed, r in drives.items()}
        print("    abs rel vs clear per drive (night, rain): "
              + "  ".join(f"{s}: {g['night']['abs_rel']:+.1f}, {g['rain']['abs_rel']:+.1f}" for s, g in per_drive.items()))
    if args.json:
        args.json.write_text(json.dumps({name: {str(s): r for s, r in d.items()} for name, d in scores.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
