"""``hydranet demo``: the default model on a synthetic drive (clear, rain, fog, night) or your video.

Without arguments, renders a short drive down a random street (pybullet, no network),
runs the bundled default model on every frame and scores it against the exact
ground truth: per-condition mIoU (CamVid's 11 classes) and depth abs rel. Panels
(image | segmentation truth | prediction | depth truth | prediction), an MP4, a GIF
and metrics.json go into the output folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import InputError
from .options import parse_size_option

EPILOG = """\
examples:
  hydranet demo                          # synthetic drive, scored against ground truth
  hydranet demo --out my-demo --frames 6
  hydranet demo --input street.mp4       # your own video (no ground truth, no scores)
  hydranet demo --weights runs/x/best.safetensors

Outputs: OUT/panels/*.png, OUT/demo.mp4, OUT/demo.gif, OUT/metrics.json.
The drive is the same street under each condition, so the scores differ only by
light and weather. Depth is scored where the truth is 0.001-80 m (sky has none)."""

DEFAULT_OUT = "hydranet-demo"
GIF_WIDTH = 720


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the default model on a synthetic drive or a video",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", metavar="VIDEO", help="a video file to run on instead of the synthetic drive")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"output folder (default: ./{DEFAULT_OUT})")
    parser.add_argument("--weights", default="default",
                        help="weights file or registered name (default: the bundled default model)")
    parser.add_argument("--frames", type=int, default=8,
                        help="frames per condition of the synthetic drive (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="which street to drive down (default: 0)")
    parser.add_argument("--size", default="360x480", metavar="HxW",
                        help="synthetic frame size (default: 360x480, CamVid's)")
    parser.add_argument("--max-frames", type=int, default=300,
                        help="with --input: stop after this many frames (default: 300)")
    parser.add_argument("--backend", default="auto",
                        help="inference engine: auto (default: the fastest installed, as in predict), "
                             "openvino, onnxruntime or torch (the exact reference)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "int8"),
                        help="auto (default: the weights' measured fast precision), fp32, bf16 or int8")
    parser.set_defaults(func=run)


def _gif_frame(panel: np.ndarray) -> np.ndarray:
    h, w = panel.shape[:2]
    if w <= GIF_WIDTH:
        return panel
    return cv2.resize(panel, (GIF_WIDTH, round(h * GIF_WIDTH / w) // 2 * 2), interpolation=cv2.INTER_AREA)


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
        raise InputError(f"{path}: cannot write; check that the folder is writable")


def truth_panel(condition: str, image: np.ndarray, seg_true: np.ndarray, depth_true: np.ndarray,
                prediction, tile_height: int = 240) -> np.ndarray:
    """image | segmentation truth | prediction | depth truth | prediction, with legends."""
    from ..inference.render import colorize_depth, colorize_labels, depth_colorbar, legend_strip, make_panel

    rng = prediction.depth_range
    palette = prediction.palette
    tiles = [image, colorize_labels(seg_true, palette), prediction.colorize(),
             colorize_depth(depth_true, rng), prediction.depth_colormap(rng)]
    titles = [condition, "labels (truth)", "labels (predicted)", "depth (truth)", "depth (predicted)"]
    th = max(12, tile_height // 12)
    legends = [lambda w: legend_strip(prediction.class_names, palette, w, text_height=th),
               lambda w: depth_colorbar(rng, w, text_height=th)]
    return make_panel(tiles, titles, legend=legends, tile_height=tile_height)


def _run_drive(args: argparse.Namespace, predictor, out: Path) -> int:
    from ..evaluation.drive import condition_gaps, score_drive
    from ..inference.media import VideoWriter

    if args.frames < 1:
        raise InputError("--frames must be at least 1")
    size = parse_size_option(args.size, minimum=32)
    num_classes = predictor.config.num_classes
    if num_classes != 11:
        raise InputError(f"{args.weights}: the demo scores CamVid's 11 classes, these weights have "
                         f"{num_classes}; use CamVid-11 weights (the default) or --input VIDEO")
    started = time.perf_counter()
    with VideoWriter(out / "demo.mp4", fps=4) as mp4, VideoWriter(out / "demo.gif", fps=4) as gif:
        def write(_name: str, condition: str, i: int, sample: dict, pred) -> None:
            panel = truth_panel(condition, sample["image"], sample["segmentation"], sample["depth"], pred)
            _write_png(out / "panels" / f"{condition}_{i:03d}.png", panel)
            mp4.write(panel)
            gif.write(_gif_frame(panel))

        results = score_drive({"model": predictor}, args.seed, args.frames, size, on_frame=write)["model"]
    elapsed = time.perf_counter() - started
    gaps = condition_gaps(results)
    summary = {"weights": str(args.weights), "seed": args.seed, "size": list(size),
               "class_names": predictor.class_names, "conditions": results,
               "change_vs_clear_percent": gaps, "seconds": round(elapsed, 1)}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    print(f"synthetic drive (seed {args.seed}, {args.frames} frames per condition, {size[0]}x{size[1]}), "
          f"weights: {args.weights}")
    print(f"{'condition':<10}{'mIoU %':>8}{'depth abs rel':>15}{'delta<1.25 %':>14}   vs clear (mIoU, abs rel)")
    for condition, r in results.items():
        change = ("   " + ", ".join("n/a" if v is None else f"{v:+.1f} %" for v in gaps[condition].values())
                  if condition in gaps else "")
        print(f"{condition:<10}{100 * r['miou']:>8.1f}{r['abs_rel']:>15.3f}{100 * r['delta1']:>14.1f}{change}")
    print(f"wrote {out}/: panels/ ({sum(r['frames'] for r in results.values())} PNG), demo.mp4, demo.gif, "
          f"metrics.json in {elapsed:.0f} s")
    return 0


def _run_video(args: argparse.Namespace, predictor, out: Path) -> int:
    from ..inference.media import VideoReader, VideoWriter

    path = Path(args.input)
    if not path.is_file():
        raise InputError(f"{path}: no such video file; check the path")
    if args.max_frames < 1:
        raise InputError("--max-frames must be at least 1")
    written = 0
    started = time.perf_counter()
    with VideoReader(path) as reader:
        fps = reader.fps
        with VideoWriter(out / "demo.mp4", fps=fps) as mp4, VideoWriter(out / "demo.gif", fps=min(float(fps), 10)) as gif:
            gif_every = max(1, round(float(fps) / 10))
            for index, frame in tqdm(reader.frames(), desc="frames", unit="frame",
                                     total=min(args.max_frames, reader.expected_frames or args.max_frames)):
                if written >= args.max_frames:
                    break
                if predictor.size is None:
                    h, w = frame.shape[:2]
                    # About CamVid's 480 px width: the model's training scale, and fast on a CPU.
                    scale = min(1.0, 480.0 / w)
                    predictor.size = (max(32, round(h * scale / 8) * 8), max(32, round(w * scale / 8) * 8))
                pred = predictor.predict(frame)
                panel = pred.panel(tile_height=min(360, frame.shape[0]))
                _write_png(out / "panels" / f"frame_{index:05d}.png", panel)
                mp4.write(panel)
                if written % gif_every == 0 and written < 100 * gif_every:
                    gif.write(_gif_frame(panel))
                written += 1
        error = reader.error
    elapsed = time.perf_counter() - started
    (out / "metrics.json").write_text(json.dumps(
        {"weights": str(args.weights), "input": str(path), "frames": written, "seconds": round(elapsed, 1),
         "model_ms_per_frame": round(predictor.model_ms_per_frame, 1), "error": error}, indent=2))
    if written == 0:
        raise InputError(f"{path}: no frame could be decoded ({error or 'empty video'})")
    if error:
        print(f"hydranet: warning: {path}: {error}")
    print(f"{path}: {written} frames, model {predictor.model_ms_per_frame:.0f} ms/frame (no ground truth, no scores)")
    print(f"wrote {out}/: panels/ ({written} PNG), demo.mp4, demo.gif, metrics.json in {elapsed:.0f} s")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..inference.predictor import Predictor

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; pass another --out")
    predictor = Predictor(args.weights, backend=args.backend, precision=args.precision)
    if predictor.note:
        print(f"note: {predictor.note}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    if args.input:
        return _run_video(args, predictor, out)
    return _run_drive(args, predictor, out)
