"""The full corruption grid: every corruption x severities 1-5, figures comparable with Cityscapes-C / KITTI-C.

    python benchmarks/corruption_eval.py --weights default [--reference W]
        [--root ../shared/data/camvid --split val] [--depth-root ../shared/data/realdepth_dev]
        [--corrupt all] [--severity 1-5] [--limit N] [--out runs/robustness] [--batch-size 4]
        [--seed 0] [--no-estimate]

Per data set (CamVid-layout segmentation with ``--root``, real frames with sparse metric depth
of the ``depth_folder`` type with ``--depth-root``): the clean images and every (corruption,
severity) of ``--corrupt`` (default ``all``: ImageNet-C's 15 + 4 extra, RoboDepth's 3 and
hydranet's 5 own weathers), each image read once and corrupted once per condition, the model
and the reference scoring the very same corrupted pictures, through ``hydranet.Predictor`` at
the pipeline's default size and engine (as ``hydranet predict`` runs it: ``--backend auto``,
OpenVINO fp32 where installed, within 1e-4 of PyTorch; eager PyTorch is several times slower
on this machine). Writes ``OUT/NAME.json`` (rows,
the summaries: mIoU / abs rel per corruption and severity, mRR, and with ``--reference`` mCE
and relative mCE) and the heat maps ``OUT/NAME_segmentation.png`` / ``OUT/NAME_depth.png``,
and prints the table, the time taken and the machine.

With ``--limit N`` (the first N images, for a quick look) it also estimates how long the
full grid (``--corrupt all`` x 1-5) takes on every image of the set on this machine: the
per-image corruption time of every condition of the full grid is measured on the first image
(conditions not run are corrupted once there, no model), plus one forward per condition per
model at the measured cost. Definitions: docs/ROBUSTNESS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hydranet.benchmark.machine import cpu_info, describe_cpu, load_average
from hydranet.checkpoints import load_model
from hydranet.evaluation.evaluate import backend_predict_fn, load_reference
from hydranet.data.corruptions import corrupt, expand
from hydranet.data.datasets import build_dataset
from hydranet.evaluation.corruption import (
    format_summary, format_table, parse_severities, robustness_grid, settings_record, summarize)
from hydranet.evaluation.evaluate import condition_key
from hydranet.evaluation.heatmap import write_heatmaps

REPO = Path(__file__).resolve().parents[1]
FULL_GRID = "all"


def _fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def estimate_full_grid(dataset: Any, stats: dict[str, Any], n_models: int, n_conditions_run: int,
                       seed: int) -> dict[str, Any]:
    """Seconds for the full grid (all x 1-5, clean included) on every image of ``dataset``."""
    full = [(None, 0)] + [(n, s) for n in expand(FULL_GRID) for s in (1, 2, 3, 4, 5)]
    images = max(1, int(stats["images"]))
    per_image: dict[str, float] = {k: v / images for k, v in stats["corrupt_seconds"].items()}
    sample = dataset[0]
    for name, sev in full:
        key = condition_key(name, sev)
        if key not in per_image:
            t0 = time.perf_counter()
            corrupt(sample["image"], name, sev, seed=seed, index=0, depth=sample.get("depth"))
            per_image[key] = time.perf_counter() - t0
    forward = sum(stats["predict_seconds"]) / n_models / (images * max(1, n_conditions_run))
    corrupt_total = sum(per_image[condition_key(n, s)] for n, s in full) * len(dataset)
    predict_total = forward * len(full) * n_models * len(dataset)
    slowest = sorted(((v, k) for k, v in per_image.items()), reverse=True)[:3]
    return {"images": len(dataset), "conditions": len(full), "models": n_models,
            "seconds_per_forward": forward, "corrupt_seconds": corrupt_total, "predict_seconds": predict_total,
            "total_seconds": corrupt_total + predict_total,
            "slowest_corruptions_per_image": {k: v for v, k in slowest}}


def run_set(name: str, spec: dict[str, Any], args: argparse.Namespace, model: Any, reference: Any,
            kinds: list[str], severities: list[int], out_dir: Path) -> dict[str, Any]:
    cfg = model.config
    dataset = build_dataset(spec, target_label_set=cfg.label_set)
    predicts = [backend_predict_fn(model, args.backend, None, args.batch_size)]
    if reference is not None:
        predicts.append(backend_predict_fn(reference, args.backend, None, args.batch_size))
    stats: dict[str, Any] = {}
    start = time.perf_counter()
    all_rows = robustness_grid(predicts, dataset, cfg.num_classes, kinds, severities, class_names=cfg.class_names,
                               max_depth=float(cfg.depth_range[1]), median_scaling=args.median_scaling,
                               batch_size=args.batch_size, max_images=args.limit, seed=args.seed,
                               progress=not args.quiet, stats=stats)
    elapsed = time.perf_counter() - start
    rows, ref_rows = all_rows[0], (all_rows[1] if reference is not None else None)
    summary = summarize(rows, ref_rows)
    n_cond = 1 + len(kinds) * len(severities)
    print(f"\n== {name}: {spec['root']} [{stats['images']} of {len(dataset)} images] x {n_cond} conditions "
          f"x {len(predicts)} model(s)")
    print(format_table(rows))
    print(format_summary(summary))
    print(f"time: {elapsed:.1f} s ({sum(stats['corrupt_seconds'].values()):.1f} s corrupting, "
          f"{sum(stats['predict_seconds']):.1f} s in the model(s))")
    estimate = None
    if not args.no_estimate:
        estimate = estimate_full_grid(dataset, stats, len(predicts), n_cond, args.seed)
        print(f"estimate, full grid ({FULL_GRID} x 1-5 + clean = {estimate['conditions']} conditions) on all "
              f"{estimate['images']} images, {estimate['models']} model(s), this machine: "
              f"{_fmt_seconds(estimate['total_seconds'])} ({_fmt_seconds(estimate['corrupt_seconds'])} corrupting, "
              f"{_fmt_seconds(estimate['predict_seconds'])} in the model(s) at "
              f"{1000 * estimate['seconds_per_forward']:.0f} ms a forward); slowest per image: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in estimate["slowest_corruptions_per_image"].items()))
    payload = {"set": name, "dataset": spec, "weights": args.weights, "reference": args.reference,
               "backend": args.backend,
               "limit": args.limit, "settings": settings_record(kinds, severities, args.seed),
               "machine": {"cpu": describe_cpu(cpu_info()), "load_average": load_average()},
               "seconds": elapsed, "stats": stats, "estimate_full_grid": estimate,
               "summary": summary, "rows": rows, "reference_rows": ref_rows}
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=float).replace("NaN", "null"))
    print(f"wrote {path}")
    for p in write_heatmaps(summary, path, title=f"{args.weights} on {name}"):
        print(f"wrote {p}")
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="default")
    parser.add_argument("--reference", default=None, help="reference weights for mCE (same classes)")
    parser.add_argument("--root", default=None, help="CamVid (SegNet layout) root, e.g. ../shared/data/camvid")
    parser.add_argument("--split", default="val")
    parser.add_argument("--depth-root", default=None, help="depth_folder root, e.g. ../shared/data/realdepth_dev")
    parser.add_argument("--corrupt", default=FULL_GRID, help="names or groups (default: all)")
    parser.add_argument("--severity", default=None, help="default: 1-5")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--median-scaling", action="store_true", help="median-scale depth per image")
    parser.add_argument("--batch-size", type=int, default=4, help="corrupted versions of an image per forward")
    parser.add_argument("--backend", default="auto",
                        help="inference engine, as hydranet predict (default auto: OpenVINO fp32 where installed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", default=str(REPO / "runs" / "robustness"))
    parser.add_argument("--no-estimate", action="store_true", help="skip the full-grid time estimate")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.root and not args.depth_root:
        parser.error("give --root (CamVid) and/or --depth-root (depth_folder)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    kinds = expand(args.corrupt)
    severities = parse_severities(args.severity)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {describe_cpu(cpu_info())}; load average {load_average()}")
    model = load_model(args.weights)
    reference = load_reference(args.reference, model.config) if args.reference else None
    start = time.perf_counter()
    if args.root:
        run_set("camvid_" + args.split, {"type": "camvid", "root": args.root, "split": args.split,
                                         "on_bad_label": "missing"}, args, model, reference, kinds, severities, out_dir)
    if args.depth_root:
        run_set("depth", {"type": "depth_folder", "root": args.depth_root, "on_bad_label": "missing"},
                args, model, reference, kinds, severities, out_dir)
    print(f"\ntotal {time.perf_counter() - start:.1f} s on {describe_cpu(cpu_info())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
