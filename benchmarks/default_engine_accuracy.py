"""What the default fast path costs in accuracy against the exact PyTorch fp32 reference.

    python benchmarks/default_engine_accuracy.py --weights default [--precision int8]
        [--camvid ../shared/data/camvid] [--realdepth ../shared/data/realdepth_dev] [--json FILE]

Both sides run through ``hydranet.Predictor`` exactly as ``hydranet predict`` does (the
weights' input-size plan, each real frame's intrinsics). The candidate is the engine and
precision the default path would use (``--backend`` / ``--precision``, default: OpenVINO at
``int8``), calibrated as the default path calibrates (generated street scenes at each
input size), never on the frames scored. Limits (docs/BENCHMARKS.md): at most 0.5 mIoU
points on CamVid val and at most 2 % relative change of depth abs rel on the real frames,
metric and median-scaled.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hydranet.benchmark.machine import cpu_info, describe_cpu
from hydranet.checkpoints import load_model
from hydranet.data.datasets import build_dataset
from hydranet.evaluation.evaluate import evaluate, predictor_predict_fn
from hydranet.evaluation.real_depth import evaluate_depth_images
from hydranet.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LIMIT_MIOU_POINTS = 0.5
LIMIT_ABS_REL_RELATIVE = 0.02


def camvid_miou(predictor: Predictor, root: Path, limit: int | None) -> float:
    data = build_dataset({"type": "camvid", "root": str(root), "split": "val"})
    cfg = predictor.config
    result = evaluate(predictor_predict_fn(predictor), data, cfg.num_classes, max_images=limit,
                      desc=f"CamVid val ({predictor.engine})")
    return 100.0 * result["segmentation"]["miou"]


def real_depth(predictor: Predictor, root: Path) -> dict[str, float]:
    data = build_dataset({"type": "depth_folder", "root": str(root)})
    result = evaluate_depth_images(lambda image, k: predictor.predict(image, intrinsics=k).depth, data,
                                   max_depth=float(predictor.config.depth_range[1]))
    mean = result["overall"]["image_mean"]
    return {"metric": mean["model"]["abs_rel"], "median_scaled": mean["model_median"]["abs_rel"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="default")
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--camvid", type=Path, default=SHARED / "camvid")
    parser.add_argument("--realdepth", type=Path, default=SHARED / "realdepth_dev")
    parser.add_argument("--limit", type=int, help="first N CamVid val images only")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    started = time.time()
    model = load_model(args.weights)
    reference = Predictor(model, backend="torch")
    candidate = Predictor(model, backend=args.backend, precision=args.precision)
    print(f"machine: {describe_cpu(cpu_info())}")
    rows: dict[str, dict[str, float]] = {}
    for name, predictor in (("reference", reference), ("candidate", candidate)):
        rows[name] = {"miou": camvid_miou(predictor, args.camvid, args.limit), **real_depth(predictor, args.realdepth)}
    ref, cand = rows["reference"], rows["candidate"]
    cost_miou = ref["miou"] - cand["miou"]
    rel = {k: cand[k] / ref[k] - 1.0 for k in ("metric", "median_scaled")}
    print(f"weights {args.weights}: {reference.engine} against {candidate.engine}")
    print("| engine | CamVid val mIoU | real depth abs rel (metric) | (median-scaled) |")
    print("|---|---:|---:|---:|")
    for name, predictor in (("reference", reference), ("candidate", candidate)):
        r = rows[name]
        print(f"| {predictor.engine} | {r['miou']:.2f} | {r['metric']:.4f} | {r['median_scaled']:.4f} |")
    ok_miou = cost_miou <= LIMIT_MIOU_POINTS
    ok_depth = all(v <= LIMIT_ABS_REL_RELATIVE for v in rel.values())
    print(f"mIoU cost {cost_miou:+.2f} points (limit {LIMIT_MIOU_POINTS}): {'within' if ok_miou else 'OVER'}")
    print(f"abs rel change metric {rel['metric']:+.2%}, median-scaled {rel['median_scaled']:+.2%} "
          f"(limit +{LIMIT_ABS_REL_RELATIVE:.0%}): {'within' if ok_depth else 'OVER'}")
    print(f"{time.time() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"weights": args.weights, "reference": reference.engine,
                                         "candidate": candidate.engine, "rows": rows,
                                         "miou_cost": cost_miou, "abs_rel_relative_change": rel,
                                         "within_limits": ok_miou and ok_depth,
                                         "machine": describe_cpu(cpu_info())}, indent=2))
    return 0 if ok_miou and ok_depth else 1


if __name__ == "__main__":
    sys.exit(main())
