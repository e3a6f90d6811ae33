"""``hydranet pseudo-depth``: flat-ground metric depth from segmentation labels, for frames without depth.

For every labelled frame, writes OUT/<name>.png (uint16, metres x 256, 0 = none: the
KITTI convention) and OUT/<name>_conf.png (confidence x 255), plus OUT/pseudo_depth.json
with the focal length (pixels at the label resolution), the camera height, the horizon of
every sequence, the method and its assumptions. A road pixel at row v has depth
f * h / (v - v0); an object standing on the ground takes, in each column, the depth of
its ground contact; sky and anything without a contact is missing. The horizon v0 of
each sequence (frames grouped by --sequence-regex) is estimated from the labels: the
road's width is linear in (v - v0), and so is the pixel height of people and cars.
Training uses the files where a dataset entry has `pseudo_depth: OUT` and the real depth
is missing (pixels below `pseudo_depth_threshold` confidence are dropped); each sample
then carries `focal`, so depth can be brought to a canonical focal (z * f_c / f).
With --motion-step K, frames that come from a video also get two-view motion depth on static
classes (triangulated against the K-th next frame of their sequence, scaled to their own
flat-ground depth) where flat-ground depth leaves them out; OUT/motion holds it alone.
Existing outputs are kept (unless --overwrite), so an interrupted run just continues.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

EPILOG = """\
examples:
  hydranet pseudo-depth --root ../shared/data/camvid --split train --out pseudo/camvid_depth
  hydranet pseudo-depth --root CamVid --out pseudo/cv --camera-height 1.3 --focal 700
  hydranet pseudo-depth --labels labels/ --label-set camvid11 --out pseudo/d --horizon 176 --hfov 55
  hydranet pseudo-depth --root CamVid --out pseudo/cv --sequence-regex '^(\\w+?)_' --camera-height auto
  hydranet pseudo-depth --root CamVid --out pseudo/cvm --camera-height auto --motion-step 1
then in the training config:
  - {type: camvid, root: CamVid, split: train, pseudo_depth: pseudo/camvid_depth, pseudo_depth_threshold: 0.5}
"""

ASSUMPTIONS = (
    "the road is a plane; pavement is a plane 0.12 m above it (a kerb)",
    "the camera has ~zero roll and pitch, so a vertical world line is an image column of constant depth",
    "camera height is constant per run (or per sequence with --camera-height auto)",
    "the horizon is constant per sequence (one camera mount, no pitching of the car)",
    "objects stand on the ground where their vertical run of pixels ends on road or pavement",
    "cars, people, bicyclists and trees touch the ground on the concave envelope of their lowest pixels",
    "signs share the contact of the pole they stand on",
    "focal length: square pixels, the stated focal at the label resolution; depth scales with it",
    "depth is along the optical axis (z), not the ray length",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pseudo-depth", help="write flat-ground depth + confidence from segmentation labels",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_argument_group("input (one of)")
    src.add_argument("--root", help="dataset root, read with the dataset reader of --dataset")
    src.add_argument("--labels", help="folder of label PNGs (class ids; searched recursively)")
    parser.add_argument("--dataset", default="camvid", help="dataset type for --root (default: camvid)")
    parser.add_argument("--split", default="train", help="split for --root (default: train)")
    parser.add_argument("--label-set", default=None,
                        help="label set of the labels (default: the dataset's, or camvid11 for --labels)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--sequence-regex", default=r"^[^_]+", metavar="RE",
                        help="frames of one camera share this match (group 1 if any) of their name; "
                             "default: the part before the first '_'")
    parser.add_argument("--horizon", type=float, default=None, metavar="ROW",
                        help="horizon row (pixel-index coordinates) for every sequence, instead of estimating it")
    parser.add_argument("--camera-height", default="1.25", metavar="M|auto",
                        help="camera height above the road in metres (default 1.25: a car's dashboard); "
                             "'auto' uses each sequence's estimate from pedestrian heights (1.7 m)")
    lens = parser.add_mutually_exclusive_group()
    lens.add_argument("--focal", type=float, default=None, metavar="PX",
                      help="focal length in pixels at the label resolution")
    lens.add_argument("--hfov", type=float, default=None, metavar="DEG",
                      help="horizontal field of view instead of --focal (default: 60 degrees, assumed)")
    parser.add_argument("--max-depth", type=float, default=80.0, help="farther is missing (default 80 m)")
    parser.add_argument("--horizon-error", type=float, default=5.0, metavar="ROWS",
                        help="horizon uncertainty behind the confidence (default 5 rows)")
    parser.add_argument("--motion-step", type=int, default=0, metavar="K",
                        help="also triangulate static classes (buildings, trees, poles, signs, fences) from "
                             "the K-th next frame of the same sequence (two-view motion depth, scaled to the "
                             "frame's flat-ground depth; needs --root); the motion-only depth goes to OUT/motion "
                             "(default 0: off)")
    parser.add_argument("--overwrite", action="store_true", help="recompute existing outputs")
    parser.set_defaults(func=run)


def _frames(args: argparse.Namespace) -> tuple[list[str], Any, Any, str, dict[str, Any]]:
    """Names, a loader name -> labels, one name -> image (None for --labels), the label set and the source."""
    from ..data.datasets.base import read_png_array
    from ..errors import InputError

    if bool(args.root) == bool(args.labels):
        raise InputError("give exactly one of --root DIR (a dataset) or --labels DIR (label PNGs)")
    if args.labels:
        folder = Path(args.labels)
        if not folder.is_dir():
            raise InputError(f"{folder}: label folder not found")
        files = sorted(p for p in folder.rglob("*.png") if p.is_file() and not p.name.endswith("_conf.png"))
        if not files:
            raise InputError(f"{folder}: no label PNGs found")
        paths = {str(p.relative_to(folder).with_suffix("")): p for p in files}

        def load(name: str) -> np.ndarray:
            arr = read_png_array(paths[name])
            if arr.ndim != 2:
                raise InputError(f"{paths[name]}: expected single-channel class ids, got shape {arr.shape}")
            return arr

        return list(paths), load, None, args.label_set or "camvid11", {"labels": str(folder)}
    from ..data.datasets import build_dataset

    spec = {"type": args.dataset, "root": args.root, "split": args.split}
    ds = build_dataset(spec)
    records = getattr(ds, "records", None)
    names = [r.name for r in records] if records is not None else [ds[i]["name"] for i in range(len(ds))]
    index = {n: i for i, n in enumerate(names)}

    def load_ds(name: str) -> np.ndarray:
        seg = ds[index[name]].get("segmentation")
        if seg is None:
            raise InputError(f"{name}: has no segmentation label in {args.root}")
        return np.asarray(seg)

    def image_ds(name: str) -> np.ndarray:
        return np.asarray(ds[index[name]]["image"])

    return names, load_ds, image_ds, args.label_set or getattr(ds, "label_set", None) or "camvid11", {"dataset": spec}


# Fewer confident motion-depth pixels than this on a frame's standing things: no motion depth.
MIN_MOTION_PIXELS = 200


def _add_motion(name: str, order: list[str], i: int, step: int, load_image: Any, labels: np.ndarray, depth: np.ndarray,
                conf: np.ndarray, cam: dict[str, Any], label_set: str, max_depth: float, motion_out: Path,
                stats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Flat-ground ``depth, conf`` with two-view motion depth put in; writes the motion-only files.

    The partner is the ``step``-th next frame; when that pair gives no pose or no consistent
    scale (the car stood still, turned sharply, or the sequence ends), the ``step``-th previous one.
    """
    from ..data import pseudo_depth as pd
    from ..data.motion_depth import merge

    for stale in (motion_out / f"{name}_conf.png", motion_out / f"{name}.png"):
        stale.unlink(missing_ok=True)  # an earlier run's motion depth for a frame that may now get none
    failure = "no_pose"
    for j in (i + step, i - step):
        if not 0 <= j < len(order):
            continue
        found = _motion_pair(name, order[j], load_image, labels, depth, conf, cam, label_set, max_depth)
        if isinstance(found, str):
            failure = found if failure == "no_pose" else failure
            continue
        mdepth, mconf, on = found
        _count_motion((np.where(on, mdepth, 0.0), None), depth, conf, stats)
        motion_out.mkdir(parents=True, exist_ok=True)
        pd.write_pseudo_depth(motion_out, name, np.where(on, mdepth, 0.0), np.where(on, mconf, 0.0))
        return merge(depth, conf, mdepth, mconf, labels, label_set)
    stats[failure] += 1
    return depth, conf


def _motion_pair(name: str, partner: str, load_image: Any, labels: np.ndarray, depth: np.ndarray, conf: np.ndarray,
                 cam: dict[str, Any], label_set: str, max_depth: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """``(motion depth, its confidence, the pixels kept)`` of frame ``name`` against ``partner``,
    scaled to the flat-ground depth; or why there is none (``"no_pose"`` / ``"no_scale"``)."""
    from ..data import motion_depth as md
    from ..data import pseudo_depth as pd
    from ..errors import InputError

    image, other = load_image(name), load_image(partner)
    if image.shape[:2] != labels.shape or other.shape[:2] != labels.shape:
        raise InputError(f"{name}: image {image.shape[:2]} / {partner}: {other.shape[:2]} and labels "
                         f"{labels.shape} differ in size; motion depth needs them equal")
    h, w = labels.shape
    K = np.array([[cam["focal"], 0, (w - 1) / 2], [0, cam["focal"], (h - 1) / 2], [0, 0, 1]])
    motion = md.two_view_depth(image, other, K, md.static_mask(labels, label_set))
    if motion is None:
        return "no_pose"
    scale = md.scale_to(motion, depth, conf >= 0.5)
    if scale is None:
        return "no_scale"
    mdepth = motion.depth * scale
    mconf = np.where((mdepth > 0) & (mdepth <= max_depth), motion.confidence, 0.0).astype(np.float32)
    mconf = np.where(md.above_its_ground(mdepth, depth, conf, labels, label_set), mconf, 0.0).astype(np.float32)
    mdepth = np.where(mconf > 0, mdepth, 0.0).astype(np.float32)
    on = np.isin(labels, pd.class_ids(label_set, md.MOTION_CLASSES)) & (mconf >= 0.5)
    if on.sum() < MIN_MOTION_PIXELS:  # e.g. all of it nearer than the road in front of it
        return "no_scale"
    agreement = _agreement(np.where(on, mdepth, 0.0), depth, conf)
    if agreement is not None and agreement > 0.25:  # the scale held on the road but standing things disagree
        return "no_scale"
    return mdepth, mconf, on


def _agreement(motion: np.ndarray, depth: np.ndarray, conf: np.ndarray) -> float | None:
    """Median ``|log(motion / flat-ground)|`` where both place a pixel (flat confidence >= 0.5), if 50 or more."""
    both = (motion > 0) & (depth > 0) & (conf >= 0.5)
    if both.sum() < 50:
        return None
    return float(np.median(np.abs(np.log(motion[both] / depth[both]))))


def _count_motion(motion: tuple[np.ndarray, Any] | None, depth: np.ndarray, conf: np.ndarray,
                  stats: dict[str, Any]) -> None:
    """Add one frame's motion depth (None: it has none) to its sequence's report."""
    if motion is None:
        return
    agreement = _agreement(motion[0], depth, conf)
    if agreement is not None:
        stats["agreement"].append(agreement)
    stats["frames"] += 1
    stats["pixels"] += int((motion[0] > 0).sum())


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..data import pseudo_depth as pd
    from ..data.motion_depth import MOTION_CLASSES
    from ..errors import InputError

    try:
        pattern = re.compile(args.sequence_regex)
    except re.error as exc:
        raise InputError(f"--sequence-regex {args.sequence_regex!r}: {exc}") from None
    auto_height = str(args.camera_height).strip().lower() == "auto"
    if not auto_height:
        try:
            fixed_height = float(args.camera_height)
        except ValueError:
            raise InputError(f"--camera-height must be metres or 'auto', got {args.camera_height!r}") from None
        if not (fixed_height > 0 and math.isfinite(fixed_height)):
            raise InputError(f"--camera-height must be > 0 metres, got {args.camera_height}")
    if args.focal is not None and not args.focal > 0:
        raise InputError(f"--focal must be > 0 pixels, got {args.focal}")
    if not args.max_depth > 0:
        raise InputError(f"--max-depth must be > 0, got {args.max_depth}")
    if args.motion_step < 0:
        raise InputError(f"--motion-step must be >= 0 frames, got {args.motion_step}")
    names, load, load_image, label_set, source = _frames(args)
    if args.motion_step and load_image is None:
        raise InputError("--motion-step needs the frames' images: give --root DIR (a dataset), not --labels")
    pd.class_ids(label_set, ())  # an unknown label set fails here, before any work
    sequences: dict[str, list[str]] = {}
    for name in names:
        sequences.setdefault(pd.sequence_of(name, pattern), []).append(name)

    out = Path(args.out)
    settings = {"camera_height": args.camera_height, "focal": args.focal, "hfov": args.hfov,
                "horizon": args.horizon, "max_depth": args.max_depth, "horizon_error": args.horizon_error,
                "sequence_regex": args.sequence_regex, "label_set": label_set}
    if args.motion_step:
        settings["motion_step"] = args.motion_step
    old_meta = out / pd.META_FILE
    if old_meta.is_file() and not args.overwrite:
        try:
            old = pd.read_pseudo_depth_meta(out).get("settings")
        except InputError:
            old = None
        if old != settings:
            raise InputError(f"{out} holds pseudo-depth made with other settings ({old}); "
                             "pass --overwrite or choose another --out")

    # Pass 1: one camera per sequence.
    seq_meta: dict[str, dict[str, Any]] = {}
    for seq, members in tqdm(sequences.items(), desc="pseudo-depth: cameras", total=len(sequences)):
        first = load(members[0])
        width = first.shape[1]
        fit = None
        if args.horizon is None or auto_height:
            fit = pd.fit_sequence_camera((load(n) for n in members), label_set)
        horizon = args.horizon if args.horizon is not None else (fit.horizon if fit else None)
        if horizon is None:
            raise InputError(f"sequence {seq}: cannot estimate the horizon from its labels (no road edges, "
                             "people or cars standing on the road); pass --horizon ROW")
        if auto_height:
            est = fit.camera_height_estimate if fit else None
            height = est if est is not None and fit.camera_height_instances >= 20 else pd.DEFAULT_CAMERA_HEIGHT
            height_source = ("median of 1.7 m * (contact - horizon) / pixel height over "
                             f"{fit.camera_height_instances} pedestrians" if height == est
                             else f"default {pd.DEFAULT_CAMERA_HEIGHT} m (too few pedestrians to estimate)")
        else:
            height, height_source = fixed_height, "--camera-height"
        if args.focal is not None:
            focal, focal_source = args.focal, "--focal"
        else:
            hfov = args.hfov if args.hfov is not None else pd.DEFAULT_HFOV
            focal = pd.focal_from_hfov(width, hfov)
            focal_source = f"horizontal FOV {hfov:g} degrees over {width} px" + (
                "" if args.hfov is not None else " (assumed: no --focal or --hfov given)")
        seq_meta[seq] = {"horizon": round(float(horizon), 3),
                         "horizon_source": "--horizon" if args.horizon is not None else fit.horizon_source,
                         "camera_height": round(float(height), 4), "camera_height_source": height_source,
                         "focal": round(float(focal), 4), "focal_source": focal_source,
                         "width": int(width), "height": int(first.shape[0]), "frames": len(members),
                         "estimate": fit.to_dict() if fit else None}
    focals = {m["focal"] for m in seq_meta.values()}
    meta: dict[str, Any] = {
        "format": "hydranet pseudo-depth", "version": 1,
        "method": f"{pd.METHOD}: road/pavement z = f*(h - kerb)/(v - v0); standing objects take their "
                  "column's ground-contact depth; horizon per sequence from road width vs row "
                  "(zero-crossing, median over frames), else pedestrian/car height vs contact row",
        "depth_encoding": "uint16 PNG <name>.png, metres x 256, 0 = none (KITTI convention)",
        "confidence_encoding": "uint8 PNG <name>_conf.png, confidence x 255, 0 = invalid",
        "focal": next(iter(focals)) if len(focals) == 1 else None,
        "focal_note": "pixels at the label resolution; per-sequence values in sequences",
        "camera_height": None if auto_height else fixed_height,
        "label_set": label_set, "source": source, "settings": settings,
        "assumptions": list(ASSUMPTIONS) + [
            f"surface heights above the road: {pd.SURFACE_HEIGHTS} m",
            (f"depth beyond {args.max_depth:g} m, sky, unlabelled pixels and rows < 4 px below the horizon "
             "are missing"),
            (f"confidence = (1 - {args.horizon_error:g} rows / (v - v0)) x min(1, tall / height above contact) "
             f"with tall = {pd.TALL_HEIGHTS} m, else 6 m"),
        ],
        "sequences": seq_meta,
        "frames": {n: s for s, members in sequences.items() for n in members},
    }
    if meta["focal"] is None:  # readers want one number; per-sequence values win (focal_for)
        meta["focal"] = float(np.median([m["focal"] for m in seq_meta.values()]))
    pd.write_pseudo_depth_meta(out, meta)

    # Pass 2: the files.
    written = skipped = 0
    stats: dict[str, list[float]] = {s: [0, 0, 0] for s in sequences}
    motion_out = out / "motion"
    motion_stats: dict[str, dict[str, Any]] = {}
    for seq, members in sequences.items():
        m = seq_meta[seq]
        order = sorted(members)
        position = {n: i for i, n in enumerate(order)}
        ms = motion_stats.setdefault(seq, {"frames": 0, "no_pose": 0, "no_scale": 0, "pixels": 0,
                                           "agreement": []})
        for name in tqdm(members, desc=f"pseudo-depth: {seq}"):
            labels = load(name)
            if labels.shape[1] != m["width"]:
                raise InputError(f"{name}: is {labels.shape[1]} px wide but sequence {seq} is {m['width']}; "
                                 "one focal per sequence needs one resolution (adjust --sequence-regex)")
            depth, conf = pd.flat_ground_depth(labels, m["horizon"], m["camera_height"], m["focal"],
                                               label_set=label_set, max_depth=args.max_depth,
                                               horizon_error=args.horizon_error)
            done = (not args.overwrite and (out / f"{name}.png").is_file()
                    and (out / f"{name}_conf.png").is_file())
            if args.motion_step and not done:
                depth, conf = _add_motion(name, order, position[name], args.motion_step, load_image, labels,
                                          depth, conf, m, label_set, args.max_depth, motion_out, ms)
            elif args.motion_step:  # an earlier run's frame: report what it holds
                _count_motion(pd.read_pseudo_depth(motion_out, name), depth, conf, ms)
                depth, kept_conf = pd.read_pseudo_depth(out, name)
                conf = kept_conf if kept_conf is not None else (depth > 0).astype(np.float32)
            stats[seq][0] += depth.size
            stats[seq][1] += int((depth > 0).sum())
            stats[seq][2] += int((conf >= 0.5).sum())
            if done:
                skipped += 1
                continue
            pd.write_pseudo_depth(out, name, depth, conf)
            written += 1
    if args.motion_step:
        for seq, ms in motion_stats.items():
            agree = ms.pop("agreement")
            ms["median_abs_log_ratio_to_flat_ground"] = round(float(np.median(agree)), 4) if agree else None
            seq_meta[seq]["motion"] = ms
        meta["motion"] = {
            "method": "two-view motion depth (hydranet.data.motion_depth): SIFT + essential matrix for the "
                      "rotation and direction of travel, DIS optical flow both ways on the de-rotated pair, "
                      "per-pixel triangulation; scaled per frame to the flat-ground depth (median ratio)",
            "step": args.motion_step,
            "classes": list(MOTION_CLASSES),
            "confidence": "1 - (1 px / parallax) / 0.2: 0.5 where one pixel of flow error moves depth by 10 %",
            "assumptions": ["the scene is static on the triangulated classes (moving objects are never used)",
                            "square pixels, the stated focal, principal point at the image centre"],
        }
        motion_meta = dict(meta, method=meta["motion"]["method"], settings=dict(settings, motion_only=True))
        pd.write_pseudo_depth_meta(motion_out, motion_meta)
    for seq, (total, valid, confident) in stats.items():
        seq_meta[seq]["valid_fraction"] = round(valid / max(total, 1), 4)
        seq_meta[seq]["confident_fraction"] = round(confident / max(total, 1), 4)
    pd.write_pseudo_depth_meta(out, meta)
    for seq, m in seq_meta.items():
        print(f"{seq}: {m['frames']} frames, horizon {m['horizon']:.1f} ({m['horizon_source']}), "
              f"h {m['camera_height']:.2f} m, f {m['focal']:.1f} px, valid {100 * m['valid_fraction']:.1f} %, "
              f"confidence >= 0.5 {100 * m['confident_fraction']:.1f} %")
    if args.motion_step:
        for seq, ms in motion_stats.items():
            print(f"{seq}: motion depth on {ms['frames']} frames ({ms['no_pose']} without a pose, "
                  f"{ms['no_scale']} without a scale), median |log(motion / flat-ground)| where both exist "
                  f"{ms.get('median_abs_log_ratio_to_flat_ground')}")
    print(f"pseudo-depth: {written} written, {skipped} already present -> {out}")
    return 0
