"""``hydranet eval``: segmentation and depth metrics on a dataset, clean and under corruptions."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from .options import parse_inference_size

EPILOG = """\
examples:
  hydranet eval --dataset camvid --root ../shared/data/camvid --split val     (the bundled model)
  hydranet eval --weights runs/camvid/best.safetensors --dataset camvid --root ../shared/data/camvid --split val
  hydranet eval --dataset camvid --root DIR --split val --corrupt standard --reference REF.safetensors \\
      --json robustness.json     (ImageNet-C's 15 x severities 1-5: mIoU, mCE vs REF, mRR, heat maps)
  hydranet eval --dataset camvid --root DIR --split val --corrupt fog,noise,hydranet --severity 3
  hydranet eval --dataset depth_folder --root ../shared/data/realdepth_dev --corrupt robodepth --median-scaling
  hydranet eval --weights kitti6 --dataset kitti_depth --root KITTI --option split_file=eigen_test_files.txt \\
      --protocol kitti_garg --json kitti.json
  hydranet eval --weights nyud40 --dataset nyud --root NYUD --split test --protocol nyud_eigen
  hydranet eval --dataset depth_folder --root ../shared/data/realdepth_dev
      (real frames with sparse metric depth: images/, depth/ uint16 metres x 256, intrinsics/NAME.txt;
       per image, metric and median-scaled abs rel beside a constant and a row-only map)

Corruptions (--corrupt, comma-separated names or groups; docs/ROBUSTNESS.md):
  standard  ImageNet-C's 15 (imagecorruptions): gaussian_noise shot_noise impulse_noise
            defocus_blur glass_blur motion_blur zoom_blur snow frost fog brightness contrast
            elastic_transform pixelate jpeg_compression; groups noise, blur, weather, digital
  extra     speckle_noise gaussian_blur spatter saturate
  robodepth RoboDepth's KITTI-C 18: the 15 + dark color_quant iso_noise
  hydranet  hydranet's depth-aware weather: hydranet-rain hydranet-fog hydranet-night
            hydranet-lowlight hydranet-glare (summarised apart);   all: everything
mCE (needs --reference): mean over corruptions of sum_s error / sum_s the reference's error
(error 1 - mIoU; depth abs rel). mRR: mean over corruptions of mean_s score / clean score
(score mIoU; depth 1 - abs rel). --json also writes heat maps NAME_segmentation.png, NAME_depth.png.

Metrics: mIoU, per-class IoU, pixel accuracy; depth abs rel, sq rel, RMSE, RMSE log,
SILog, delta < 1.25^k. Depth protocols: none, kitti_eigen, kitti_garg (80 m),
kitti_eigen_50, kitti_garg_50, nyud_eigen (10 m); --median-scaling for scale-free models.
Predictions are the logits and depth resized bicubically to the label resolution.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..data.datasets import DATASET_TYPES

    parser = subparsers.add_parser(
        "eval", help="evaluate weights on a dataset (optionally under ImageNet-C corruptions, weather...)",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", "-w", default="default",
                        help="weights file or registered name (default: the bundled model)")
    parser.add_argument("--dataset", "-d", required=True, choices=sorted(DATASET_TYPES), help="dataset format")
    parser.add_argument("--root", required=True, help="dataset folder (or .mat file for nyud_mat)")
    parser.add_argument("--split", default=None, help="split name (val, test, ...)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra reader option, e.g. split_file=eigen.txt, class_map=map.mat")
    parser.add_argument("--remap", default=None,
                        help="by_name: map the dataset's classes to the model's by class name")
    parser.add_argument("--protocol", default=None, help="depth protocol (default: cap at the model's range)")
    parser.add_argument("--median-scaling", action="store_true", help="per-image median scaling of depth")
    parser.add_argument("--corrupt", default=None, metavar="NAMES",
                        help="comma-separated corruptions or groups: standard, extra, noise, blur, weather, "
                             "digital, robodepth, hydranet, all, or names (see below)")
    parser.add_argument("--severity", default=None,
                        help="1..5: a number, a list 1,3,5 or a range 1-5 / 1..5 (default: all five)")
    parser.add_argument("--reference", default=None, metavar="WEIGHTS",
                        help="reference weights evaluated on the same corrupted images: gives mCE")
    parser.add_argument("--size", default=None, metavar="HxW",
                        help="network input size: HxW, native, or nothing for the weights' own choice "
                             "(camera-aware weights resize to the focal length they were trained for)")
    parser.add_argument("--backend", default="torch", help="inference backend (see hydranet predict --help)")
    parser.add_argument("--hfov", type=float, default=None, metavar="DEG",
                        help="camera-aware weights: the horizontal field of view taken for images whose "
                             "dataset states no camera (default 60; KITTI's calibration and a depth "
                             "folder's intrinsics/NAME.txt are always used)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--max-images", type=int, default=None, help="evaluate only the first N images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corruptions")
    parser.add_argument("--json", dest="json_path", default=None, metavar="FILE", help="write all results as JSON")
    parser.add_argument("--per-class", action="store_true", help="print per-class IoU of the clean set")
    parser.set_defaults(func=run)


def _options(items: list[str]) -> dict[str, Any]:
    import yaml

    from ..errors import InputError

    out = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--option {item!r}: use KEY=VALUE")
        k, v = item.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def run_real_depth(args: argparse.Namespace, model: Any, dataset: Any, size: Any) -> int:
    """Real frames with sparse metric depth: the model beside a constant and a row-only map."""
    from ..errors import HydranetError
    from ..evaluation.real_depth import evaluate_depth_images, format_real_depth_table
    from ..inference.predictor import Predictor

    predictor = Predictor(model, backend=args.backend, size=size, hfov=args.hfov)
    cfg = predictor.config

    def predict(image: Any, k: Any) -> Any:
        return predictor.predict(image, intrinsics=k).depth

    result = evaluate_depth_images(predict, dataset, max_depth=float(cfg.depth_range[1]),
                                   max_images=args.max_images)
    if not result["overall"]["images"]:
        skipped = result.get("skipped") or []
        raise HydranetError(f"{args.root}: no image could be scored ({len(skipped)} skipped: "
                            f"{', '.join(skipped[:3])}{' ...' if len(skipped) > 3 else ''}; see the warnings "
                            "above); each images/NAME needs depth/NAME.png, a 16-bit PNG of metres x 256 "
                            "at the image's size")
    camera = ("camera-aware: each image at the canonical focal length from its intrinsics"
              if predictor.camera_aware else "depth as the network gives it")
    missing = result["overall"]["without_intrinsics"]
    if predictor.camera_aware and missing:
        camera += (f" ({missing} of {result['overall']['images']} image(s) without intrinsics/NAME.txt: "
                   f"a {predictor.hfov:g} degree horizontal field of view "
                   f"{'stated (--hfov)' if args.hfov else 'assumed'})")
    print(f"weights {args.weights} on {args.root} [{result['overall']['images']} images]; {camera}; "
          f"depth capped at {cfg.depth_range[1]:g} m")
    print(format_real_depth_table(result))
    if args.json_path:
        payload = {"weights": str(args.weights), "dataset": args.dataset, "root": str(args.root), **result}
        Path(args.json_path).write_text(json.dumps(payload, indent=2, default=float).replace("NaN", "null"))
        print(f"wrote {args.json_path}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..checkpoints import load_model
    from ..data.datasets import build_dataset
    from ..evaluation.corruption import format_table, parse_kinds, parse_severities, run_corruptions
    from ..evaluation.evaluate import backend_predict_fn, evaluate
    from ..inference.camera import check_hfov

    if args.hfov is not None:
        check_hfov(args.hfov, "--hfov")
    kinds = parse_kinds(args.corrupt)
    severities = parse_severities(args.severity) if kinds else []
    size = parse_inference_size(args.size)
    model = load_model(args.weights)
    cfg = model.config
    spec: dict[str, Any] = {"type": args.dataset, "root": args.root, "on_bad_label": "missing",
                            **_options(args.option)}
    if args.split:
        spec["split"] = args.split
    if args.remap:
        spec["remap"] = args.remap
    dataset = build_dataset(spec, target_label_set=cfg.label_set)
    if args.dataset == "depth_folder" and not kinds and not args.reference:
        return run_real_depth(args, model, dataset, size)
    protocol = args.protocol or "none"
    max_depth = None if args.protocol else cfg.depth_range[1]
    if kinds or args.reference:
        return run_robustness(args, model, dataset, size, kinds, severities, protocol, max_depth)
    predict = backend_predict_fn(model, args.backend, size, args.batch_size, args.hfov)

    def one(kind: str | None, severity: int) -> dict[str, Any]:
        desc = "clean" if kind is None else f"{kind} {severity}"
        return evaluate(predict, dataset, cfg.num_classes, cfg.class_names, protocol=protocol, max_depth=max_depth,
                        median_scaling=args.median_scaling, corruption=kind, severity=severity,
                        batch_size=args.batch_size, max_images=args.max_images, seed=args.seed, desc=desc)

    rows = run_corruptions(one, kinds, severities)
    clean = rows[0]["result"]
    _print_header(args, cfg, clean, protocol)
    print(format_table(rows))
    _print_clean_details(args, cfg, clean)
    if args.json_path:
        payload = {"weights": str(args.weights), "dataset": args.dataset, "root": str(args.root),
                   "split": args.split, "protocol": protocol, "median_scaling": args.median_scaling,
                   "rows": rows}
        Path(args.json_path).write_text(json.dumps(payload, indent=2, default=float).replace("NaN", "null"))
        print(f"wrote {args.json_path}")
    return 0


def _print_header(args: argparse.Namespace, cfg: Any, clean: dict[str, Any], protocol: str) -> None:
    from ..inference.camera import ASSUMED_HFOV_DEG

    print(f"weights {args.weights} ({cfg.num_classes} classes, {cfg.encoder}) on {args.dataset} "
          f"{args.split or ''} [{clean['images']} images], depth protocol {protocol}"
          + (" + median scaling" if args.median_scaling else ""))
    if cfg.canonical_focal is not None and "depth" in clean:
        missing = clean.get("without_intrinsics", 0)
        hfov, how = (args.hfov, "stated (--hfov)") if args.hfov else (ASSUMED_HFOV_DEG, "assumed")
        print("camera-aware depth: each image at the canonical focal length from its camera"
              + (f"; {missing} of {clean['images']} image(s) state no camera: a {hfov:g} degree "
                 f"horizontal field of view {how} for them" if missing else ""))
    if clean.get("skipped"):
        print(f"{len(clean['skipped'])} unreadable image(s) skipped (see the warnings); the figures "
              "are over the others")


def _print_clean_details(args: argparse.Namespace, cfg: Any, clean: dict[str, Any]) -> None:
    if "depth" in clean:
        d = clean["depth"]
        print("clean depth: " + ", ".join(f"{k} {d[k]:.4f}" for k in
                                          ("abs_rel", "sq_rel", "rmse", "rmse_log", "silog", "delta1", "delta2", "delta3")))
    if args.per_class and "segmentation" in clean:
        names = cfg.class_names or [str(i) for i in range(cfg.num_classes)]
        for name, iou in zip(names, clean["segmentation"]["iou"]):
            print(f"  {name:>16}: " + ("-" if math.isnan(iou) else f"{iou:.4f}"))


def run_robustness(args: argparse.Namespace, model: Any, dataset: Any, size: Any, kinds: list[str],
                   severities: list[int], protocol: str, max_depth: float | None) -> int:
    """The clean set and every (corruption, severity), the model and a reference on the same
    corrupted images; the table, the field's summaries, JSON and heat maps."""
    from ..evaluation.corruption import format_summary, format_table, robustness_grid, settings_record, summarize
    from ..evaluation.evaluate import backend_predict_fn, load_reference

    cfg = model.config
    predicts = [backend_predict_fn(model, args.backend, size, args.batch_size, args.hfov)]
    if args.reference:
        predicts.append(backend_predict_fn(load_reference(args.reference, cfg), args.backend, size, args.batch_size,
                                           args.hfov))
    all_rows = robustness_grid(predicts, dataset, cfg.num_classes, kinds, severities, class_names=cfg.class_names,
                               protocol=protocol, max_depth=max_depth, median_scaling=args.median_scaling,
                               batch_size=args.batch_size, max_images=args.max_images, seed=args.seed)
    rows, ref_rows = all_rows[0], (all_rows[1] if args.reference else None)
    clean = rows[0]["result"]
    _print_header(args, cfg, clean, protocol)
    print(format_table(rows))
    _print_clean_details(args, cfg, clean)
    summary = summarize(rows, ref_rows)
    text = format_summary(summary)
    if text:
        print(("reference " + str(args.reference) + "\n" if args.reference else "") + text)
    if args.json_path:
        from ..evaluation.heatmap import write_heatmaps

        payload = {"weights": str(args.weights), "reference": args.reference, "dataset": args.dataset,
                   "root": str(args.root), "split": args.split, "protocol": protocol,
                   "median_scaling": args.median_scaling, "settings": settings_record(kinds, severities, args.seed),
                   "summary": summary, "rows": rows, "reference_rows": ref_rows}
        Path(args.json_path).write_text(json.dumps(payload, indent=2, default=float).replace("NaN", "null"))
        print(f"wrote {args.json_path}")
        for path in write_heatmaps(summary, args.json_path, title=str(args.weights)):
            print(f"wrote {path}")
    return 0
