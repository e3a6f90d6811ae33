"""Self-supervised depth from video: does fine-tuning on unlabelled frames help, and is the motion right?

    python benchmarks/video_selfsup.py synthetic [--steps 200] [--out runs/video_selfsup]
    python benchmarks/video_selfsup.py signal [--texture T] [--weights FINE_TUNED]
    python benchmarks/video_selfsup.py kitti [--root ../shared/data/video_kitti06] [--steps 150]

``synthetic``: drives rendered by ``hydranet.data.synthetic.render_video`` (one light per
drive, exact depth and ego-motion). Training drives (seeds 100-103) are written as frame
folders and fine-tune the bundled default through ``hydranet train`` with the view-synthesis
loss alone (``configs/examples/video_finetune.yaml``: no labels, no depth); held-back drives
(seeds 200-201, other streets) are scored before and after: median-scaled abs rel against
the rendered depth (through ``hydranet.Predictor`` as ``hydranet predict`` runs it, with the
drive's camera), and the angle between the pose network's translation and the true one.

``signal``: with the true motion, the photometric error of the rendered depth, the default's
depth and a constant depth on the training drives: how much view synthesis can teach there.

``kitti``: three consecutive KITTI odometry frames (12-14 of sequence 06) and the right view
of frame 12. Frame 12 is the target, 13 and 14 its neighbours, the stereo pair gives the
metric scale (baseline from the camera file's ``bf / fx``); frames are used at the model's
canonical scale (fx 415.69 px: 218x721). Prints the photometric loss over
the run, the predicted motion 12 -> 13 against the ground-truth poses (angle of the
translation, its length against the true 1.2 m), and the stereo scale of the depth of frame 12
before and after (the factor that best warps the right view into the left with the true
baseline; 1 = the depth is metric).

Both print the machine and the time taken. Nothing here is used to choose a model: the
synthetic figures are reported once per change of the method, the KITTI frames check it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

from hydranet.benchmark.machine import cpu_info, describe_cpu
from hydranet.data.datasets import VideoFrames
from hydranet.data.datasets.video import read_camera_file
from hydranet.data.synthetic import render_video
from hydranet.inference.predictor import Predictor
from hydranet.training.video import VideoLoss, load_pose_net
from hydranet.training.view_synthesis import angle_between_deg, road_plane_height, stereo_scale

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
TRAIN_SEEDS = (100, 101, 102, 103)
HELD_SEEDS = (200, 201)
SIZE = (192, 256)
# The lens that makes a 256-pixel-wide frame the bundled model's canonical focal length (415.69 px),
# so training and inference (Predictor resizes by canonical / fx) see the frames at one scale.
HFOV = math.degrees(2 * math.atan(SIZE[1] / 2 / 415.69))
KITTI_HEIGHT = 1.65  # the colour cameras' height above the road (KITTI setup page)


def _frame(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0


def write_drive(folder: Path, frames: list[dict]) -> list[float]:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(f["image"], cv2.COLOR_RGB2BGR))
    k = frames[0]["intrinsics"]
    return [float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])]


def median_scaled_abs_rel(weights: str | Path, drives: list[list[dict]]) -> tuple[float, float]:
    """Mean median-scaled abs rel over the frames, and the mean camera height the predicted road
    and depth give (the drives' camera is 1.45 m above the road)."""
    predictor = Predictor(weights, backend="torch", precision="fp32")
    road_id = predictor.config.class_names.index("road")
    errors, heights = [], []
    for frames in drives:
        for f in frames:
            result = predictor.predict(f["image"], intrinsics=f["intrinsics"])
            pred = result.depth
            road = torch.from_numpy(result.labels == road_id)[None, None]
            heights.append(float(road_plane_height(torch.from_numpy(pred)[None, None].float(), road,
                                                   torch.from_numpy(f["intrinsics"]).float()[None])[0]))
            gt = f["depth"]
            valid = (gt > 0) & (gt < 80)
            p, g = pred[valid], gt[valid]
            p = p * np.median(g) / np.median(p)
            errors.append(float(np.mean(np.abs(p - g) / g)))
    return float(np.mean(errors)), float(np.nanmean(heights))


def rotation_deg(r: np.ndarray) -> float:
    """The angle of a rotation matrix, degrees."""
    return math.degrees(math.acos(float(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))))


def pose_errors(pose_path: Path, drives: list[list[dict]]) -> tuple[list[float], list[float], list[float]]:
    """Per consecutive pair: the angle between predicted and true translation, the angle of the
    rotation error R_pred^T R_true, and the angle of the true rotation (all degrees)."""
    net = load_pose_net(pose_path)
    angles, rot_errors, rot_true = [], [], []
    with torch.no_grad():
        for frames in drives:
            for a, b in zip(frames[:-1], frames[1:]):
                motion = net(_frame(a["image"]), _frame(b["image"]))[0].double().numpy()
                true = np.linalg.inv(b["pose"]) @ a["pose"]
                angles.append(angle_between_deg(torch.from_numpy(motion[:3, 3]).float(),
                                                torch.from_numpy(true[:3, 3]).float()))
                rot_errors.append(rotation_deg(motion[:3, :3].T @ true[:3, :3]))
                rot_true.append(rotation_deg(true[:3, :3]))
    return angles, rot_errors, rot_true


def aligned_motions(run: Path) -> dict[str, np.ndarray]:
    """The motions ``T_{t->s}`` a ``motion: align`` run found, by their pair's key (the checkpoint
    keeps them); empty for a run with the pose network's motions."""
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True).get("video") or {}
    return {k: m.double().numpy() for k, m in ((state.get("_extra_state") or {}).get("aligned", {})).items()}


def alignment_errors(run: Path, drives: list[list[dict]]) -> tuple[list[float], list[float]]:
    """Translation angle and rotation error (degrees) of the aligned motions of the training
    drives' (unmirrored) pairs against the truth."""
    found = aligned_motions(run)
    angles, rotations = [], []
    for frames in drives:
        for j in range(1, len(frames) - 1):
            for o in (-1, 1):
                m = found.get(VideoLoss._key(_frame(frames[j]["image"])[0], _frame(frames[j + o]["image"])[0]))
                if m is None:
                    continue
                true = np.linalg.inv(frames[j + o]["pose"]) @ frames[j]["pose"]
                angles.append(angle_between_deg(torch.from_numpy(m[:3, 3]), torch.from_numpy(true[:3, 3])))
                rotations.append(rotation_deg(m[:3, :3].T @ true[:3, :3]))
    return angles, rotations


def train(config: dict, out: Path, log: Path) -> float:
    path = out / "config.yaml"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.time()
    with log.open("w") as f:
        done = subprocess.run([sys.executable, "-m", "hydranet", "train", "--config", str(path), "--overwrite"],
                              stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
    if done.returncode:
        sys.exit(f"training failed; see {log}")
    return time.time() - start


def losses(csv_path: Path, key: str = "photometric") -> list[tuple[int, float]]:
    with csv_path.open() as f:
        return [(int(r["step"]), float(r[key])) for r in csv.DictReader(f) if r.get(key) not in (None, "", "nan")]


def synthetic(args: argparse.Namespace) -> dict:
    out = Path(args.out) / "synthetic"
    t0 = time.time()
    look = {"size": SIZE, "hfov_deg": HFOV, "texture": args.texture, "noise": args.noise}
    train_drives = [render_video(s, frames=args.frames, **look) for s in TRAIN_SEEDS]
    held = [render_video(s, frames=10, **look) for s in HELD_SEEDS]
    entries = []
    for seed, frames in zip(TRAIN_SEEDS, train_drives):
        k = write_drive(out / "frames" / f"drive{seed}", frames)
        entries.append({"type": "video", "root": str(out / "frames" / f"drive{seed}"), "intrinsics": k})
    print(f"rendered {len(train_drives)} training drives x {args.frames} frames and {len(held)} held-back "
          f"drives x 10 at {SIZE[0]}x{SIZE[1]} ({HFOV:.1f} degree lens) in {time.time() - t0:.0f} s")
    before, height_before = median_scaled_abs_rel("default", held)
    config = {"base": str(REPO / "configs/examples/video_finetune.yaml"), "output": str(out / "run"),
              "data": {"train": entries}, "augment": {"resize": None, "canonical_scale": True},
              "loss": {"view_synthesis": {"camera_height": args.camera_height, "pose_warmup": args.warmup,
                                          **({"motion": args.motion} if args.motion else {})}},
              "optim": {} if args.lr_pose is None else {"lr_pose": args.lr_pose},
              "steps": args.steps, "batch_size": args.batch_size, "threads": args.threads,
              "checkpoint_every": 50, "tensorboard": False, "log_every": 10}
    seconds = train(config, out / "run", out / "train.log")
    after, height_after = median_scaled_abs_rel(out / "run" / "last.safetensors", held)
    angles, rot_errors, rot_true = pose_errors(out / "run" / "pose.safetensors", held)
    curve = losses(out / "run" / "train.csv")
    result = {"held_back_median_scaled_abs_rel": {"before": before, "after": after},
              "camera_height_m": {"before": height_before, "after": height_after, "true": 1.45},
              "pose_translation_angle_deg": {"mean": float(np.mean(angles)), "median": float(np.median(angles)),
                                             "max": float(np.max(angles)), "pairs": len(angles)},
              "pose_rotation_error_deg": {"mean": float(np.mean(rot_errors)), "max": float(np.max(rot_errors)),
                                          "true_rotation_mean": float(np.mean(rot_true))},
              "photometric_first_last": [curve[0], curve[-1]] if curve else None,
              "train_seconds": seconds, "steps": args.steps}
    print(f"held-back drives (seeds {', '.join(map(str, HELD_SEEDS))}), median-scaled abs rel: "
          f"default {before:.4f} -> after {args.steps} video steps {after:.4f}")
    print(f"camera height from the predicted road and depth (true 1.45 m): default {height_before:.3f} m, "
          f"after {height_after:.3f} m")
    print(f"pose network translation vs the true ego-motion over {len(angles)} held-back frame pairs: "
          f"mean {np.mean(angles):.1f} deg, median {np.median(angles):.1f}, max {np.max(angles):.1f}")
    print(f"pose network rotation error: mean {np.mean(rot_errors):.2f} deg, max {np.max(rot_errors):.2f} "
          f"(the true rotation between frames: mean {np.mean(rot_true):.2f} deg)")
    aligned, aligned_rot = alignment_errors(out / "run", train_drives)
    if aligned:
        result["aligned_translation_angle_deg"] = {"mean": float(np.mean(aligned)), "max": float(np.max(aligned)),
                                                   "pairs": len(aligned)}
        result["aligned_rotation_error_deg"] = float(np.mean(aligned_rot))
        print(f"direct alignment on {len(aligned)} training pairs: translation {np.mean(aligned):.2f} deg from the "
              f"truth on average (max {np.max(aligned):.1f}), rotation error {np.mean(aligned_rot):.3f} deg")
    if curve:
        print(f"photometric error (logged every 10 steps): step {curve[0][0]} {curve[0][1]:.4f} -> "
              f"step {curve[-1][0]} {curve[-1][1]:.4f}; training {seconds:.0f} s")
    return result


def signal(args: argparse.Namespace) -> dict:
    """How much the photometric error says about depth on the synthetic training drives.

    With the true motion, the error of view synthesis (SSIM + L1, minimum over t-1 and t+1,
    auto-masked, full scale, nothing else) for the rendered depth, the bundled default's depth
    (and that of ``--weights``, e.g. a fine-tuned model) and a constant depth at the true median.
    If the true depth scores barely better than the default's, view synthesis has little to
    teach on these frames, whatever the pose network. Beside each model: the slope of its log
    depth against the true log depth (1: the depth's shape is right; below 1: compressed, far
    too near and near too far).
    """
    from hydranet.checkpoints import load_model
    from hydranet.inference.pipeline import normalize
    from hydranet.training.view_synthesis import view_synthesis_loss

    drives = [render_video(s, frames=args.frames, size=SIZE, hfov_deg=HFOV, texture=args.texture,
                           noise=args.noise) for s in TRAIN_SEEDS]
    models = {"bundled default": load_model("default").eval()}
    if args.weights:
        models[str(args.weights)] = load_model(args.weights).eval()
    rows: dict[str, list[float]] = {"rendered depth": [], **{name: [] for name in models},
                                    "constant (true median)": []}
    slopes: dict[str, list[float]] = {name: [] for name in models}
    with torch.no_grad():
        for frames in drives:
            for prev, target, nxt in zip(frames[:-2], frames[1:-1], frames[2:]):
                gt = torch.from_numpy(target["depth"]).float()[None, None]
                valid = (gt > 0) & (gt < 80)
                depths = {"rendered depth": torch.where(valid, gt, torch.full_like(gt, 80.0))}
                for name, model in models.items():
                    out = model(torch.from_numpy(normalize(target["image"]))[None])["depth"]
                    pred = torch.nn.functional.interpolate(out, size=SIZE, mode="bilinear", align_corners=False)
                    depths[name] = pred.abs().clamp_min(1e-2)
                    slopes[name].append(float(np.polyfit(np.log(gt[valid].numpy()),
                                                         np.log(depths[name][valid].numpy()), 1)[0]))
                depths["constant (true median)"] = torch.full_like(gt, float(gt[valid].median()))
                k = torch.from_numpy(target["intrinsics"]).float()[None]
                motions = [torch.from_numpy(np.linalg.inv(n["pose"]) @ target["pose"]).float()[None]
                           for n in (prev, nxt)]
                for name, depth in depths.items():
                    _, info = view_synthesis_loss(depth, _frame(target["image"]),
                                                  [_frame(prev["image"]), _frame(nxt["image"])], motions, k,
                                                  smooth_weight=0.0, scales=1)
                    rows[name].append(float(info["photometric"][0]))
    result = {name: float(np.mean(v)) for name, v in rows.items()}
    slope = {name: float(np.mean(v)) for name, v in slopes.items()}
    print(f"photometric error with the true motion over {len(rows['rendered depth'])} frames of "
          f"{len(drives)} training drives (log-depth slope against the truth):")
    for name, value in result.items():
        print(f"  {name:24s} {value:.4f}" + (f"   slope {slope[name]:.3f}" if name in slope else ""))
    gap = 1 - result["rendered depth"] / result["bundled default"]
    print(f"the rendered depth is {100 * gap:.1f} % below the default's depth")
    return {"photometric_true_motion": result, "relative_gap": gap, "log_depth_slope": slope}


def kitti(args: argparse.Namespace) -> dict:
    root = Path(args.root)
    out = Path(args.out) / "kitti"
    calib = root / "camera_KITTI04-12.yaml"
    k_full, baseline = read_camera_file(calib)
    poses = np.loadtxt(root / "poses_06.txt").reshape(-1, 3, 4)
    pose = [np.vstack([p, [0, 0, 0, 1]]) for p in poses]
    true = np.linalg.inv(pose[13]) @ pose[12]  # T_{12->13}
    data = VideoFrames(root, offsets=(1, 2), pattern="*_left.png", calib=calib, stereo=("_left", "_right"))
    print(data.describe())
    sample = data[0]
    scale = 415.69 / float(sample["video"]["intrinsics"][0, 0])  # the canonical scale training uses
    h, w = (int(round(n * scale)) for n in sample["image"].shape[:2])
    left = cv2.resize(sample["image"], (w, h), interpolation=cv2.INTER_AREA)
    right = cv2.resize(sample["video"]["right"], (w, h), interpolation=cv2.INTER_AREA)
    k = sample["video"]["intrinsics"].copy()
    k[0] *= w / sample["image"].shape[1]
    k[1] *= h / sample["image"].shape[0]

    def scale_of(weights: str | Path) -> tuple[float, float, float]:
        """(stereo scale, median depth, camera height from the predicted road) of frame 12."""
        predictor = Predictor(weights, backend="torch", precision="fp32")
        result = predictor.predict(left, intrinsics=k)
        depth = torch.from_numpy(result.depth)[None, None].float()
        kt = torch.from_numpy(k).float()[None]
        s, _, _ = stereo_scale(depth, _frame(left), _frame(right), kt, baseline)
        road = torch.from_numpy(result.labels == predictor.config.class_names.index("road"))[None, None]
        height = float(road_plane_height(depth, road, kt)[0])
        return s, float(np.median(result.depth)), height

    before, median_before, height_before = scale_of("default")
    config = {"base": str(REPO / "configs/examples/video_finetune.yaml"), "output": str(out / "run"),
              "data": {"train": [{"type": "video", "root": str(root), "pattern": "*_left.png", "offsets": [1, 2],
                                  "calib": str(calib), "stereo": ["_left", "_right"], "repeat": args.batch_size}]},
              "augment": {"resize": None, "canonical_scale": True, "flip": False, "color_jitter": 0.0},
              "loss": {"view_synthesis": {"camera_height": args.camera_height, "pose_warmup": args.warmup,
                                          **({"motion": args.motion} if args.motion else {})}},
              "optim": {} if args.lr_pose is None else {"lr_pose": args.lr_pose},
              "steps": args.steps, "batch_size": args.batch_size, "threads": args.threads,
              "checkpoint_every": 50, "tensorboard": False, "log_every": 5}
    seconds = train(config, out / "run", out / "train.log")
    after, median_after, height_after = scale_of(out / "run" / "last.safetensors")
    net = load_pose_net(out / "run" / "pose.safetensors")
    f12 = cv2.resize(sample["image"], (w, h), interpolation=cv2.INTER_AREA)
    f13 = cv2.resize(sample["video"]["neighbours"][0], (w, h), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        motion = net(_frame(f12), _frame(f13))[0].double().numpy()
    angle = angle_between_deg(torch.from_numpy(motion[:3, 3]), torch.from_numpy(true[:3, 3]))
    length = float(np.linalg.norm(motion[:3, 3]))
    curve = losses(out / "run" / "train.csv")
    print(f"baseline {baseline:.4f} m (bf / fx of {calib.name}); frames at {h}x{w}")
    print(f"photometric error: step {curve[0][0]} {curve[0][1]:.4f} -> step {curve[-1][0]} {curve[-1][1]:.4f} "
          f"({args.steps} steps, {seconds:.0f} s)")
    print(f"motion 12 -> 13: predicted translation {np.round(motion[:3, 3], 3).tolist()} m, true "
          f"{np.round(true[:3, 3], 3).tolist()} m: angle {angle:.1f} deg, length {length:.3f} m vs "
          f"{np.linalg.norm(true[:3, 3]):.3f} m ({length / np.linalg.norm(true[:3, 3]):.3f}x)")
    found = sorted(aligned_motions(out / "run").values(), key=lambda m: float(np.linalg.norm(m[:3, 3])))
    if found:  # one target, neighbours 13 and 14 (twice as far): the shorter motion is 12 -> 13
        a = found[0][:3, 3]
        print(f"motion 12 -> 13 by direct alignment: {np.round(a, 3).tolist()} m: angle "
              f"{angle_between_deg(torch.from_numpy(a), torch.from_numpy(true[:3, 3])):.1f} deg, length "
              f"{np.linalg.norm(a):.3f} m; rotation error {rotation_deg(found[0][:3, :3].T @ true[:3, :3]):.2f} deg")
    print(f"stereo scale of frame 12's depth (1 = metric by the true baseline): default {before:.3f} "
          f"(median depth {median_before:.1f} m) -> after {after:.3f} (median {median_after:.1f} m)")
    print(f"camera height from the predicted road and depth of frame 12 (KITTI's camera: {KITTI_HEIGHT} m): "
          f"default {height_before:.3f} m -> after {height_after:.3f} m")
    return {"photometric": curve, "motion_12_13": motion[:3, 3].tolist(), "true_12_13": true[:3, 3].tolist(),
            "angle_deg": angle, "length_m": length, "true_length_m": float(np.linalg.norm(true[:3, 3])),
            "stereo_scale": {"before": before, "after": after}, "baseline_m": baseline,
            "camera_height_m": {"before": height_before, "after": height_after, "true": KITTI_HEIGHT},
            "aligned_12_13": found[0][:3, 3].tolist() if found else None,
            "train_seconds": seconds, "steps": args.steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("synthetic", "signal", "kitti"))
    parser.add_argument("--root", default=str(SHARED / "video_kitti06"))
    parser.add_argument("--out", default="runs/video_selfsup")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None, help="steps that train the pose network only (default 50)")
    parser.add_argument("--lr-pose", type=float, default=None,
                        help="learning rate of the pose network (default: the example config's)")
    parser.add_argument("--frames", type=int, default=14, help="frames per synthetic training drive")
    parser.add_argument("--texture", type=float, default=0.0,
                        help="fine surface texture of the synthetic drives (relative contrast; 0: as the "
                             "training streets)")
    parser.add_argument("--motion", choices=("network", "align"), default=None,
                        help="where the depth's motions come from (loss.view_synthesis.motion): the pose "
                             "network, or direct alignment of each pair with the model's depth (default: "
                             "the example config's, align)")
    parser.add_argument("--noise", type=float, default=1.0,
                        help="sensor noise of the synthetic drives relative to the training streets' (1: "
                             "about 8 grey levels at mid grey, new in every frame; 0.25: a daylight "
                             "dash-cam after its own denoising)")
    parser.add_argument("--camera-height", type=float, default=None,
                        help="keep the scale by this camera height above the road, as the example config does "
                             "(the synthetic drives' camera is 1.45 m up, KITTI's 1.65 m; default: none, the "
                             "scale is left to the start weights and, for KITTI, the stereo pair)")
    parser.add_argument("--weights", default=None,
                        help="signal: also score these weights (e.g. runs/video_selfsup/synthetic/run/last.safetensors)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {describe_cpu(cpu_info())}")
    start = time.time()
    if args.what == "signal":
        result = signal(args)
    elif args.what == "synthetic":
        args.steps = args.steps or 200
        args.warmup = 50 if args.warmup is None else args.warmup
        result = synthetic(args)
    else:
        if not Path(args.root).is_dir():
            sys.exit(f"{args.root}: not found (the KITTI frames live in ../shared/data/video_kitti06)")
        args.steps = args.steps or 150
        args.warmup = 50 if args.warmup is None else args.warmup
        result = kitti(args)
    result["machine"] = describe_cpu(cpu_info())
    result["seconds"] = time.time() - start
    path = Path(args.out) / f"{args.what}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=float))
    print(f"total {result['seconds']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
