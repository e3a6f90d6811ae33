"""``hydranet predict``: segmentation and depth for images, folders and videos.

Each input gets the pictures chosen with --save (default: a panel of
image | segmentation | overlay | depth with a legend) in --out. Videos keep their frame
rate and frame count (or every N-th frame with --every) and are written as H.264 MP4
and/or GIF. Raw outputs (--save raw) are label PNGs of class indices, depth as 16-bit PNG
in the KITTI convention (metres x 256) and as float32 .npy, plus a JSON sidecar with the
class names, colours and units. A bad input is reported on one line and skipped; the
exit code is then 1.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import HydranetError, WeightsNotFoundError
from ..inference.backends import available_backends
from ..inference.camera import ASSUMED_HFOV_DEG, camera_record, check_hfov
from ..inference.media import FULL_DECODE_PIXELS, MAX_PIXELS, VIDEO_FORMATS
from ..inference.outputs import PICTURE_FORMATS, SAVE_KINDS, OutputOptions, existing
from ..inference.predictor import PRECISIONS, Predictor
from ..inference.render import COLORMAPS, DEPTH_SCALES
from ..inference.runner import Stats, collect_inputs, plan_jobs, report_error, run_jobs
from .options import parse_camera, parse_inference_size

EPILOG = """\
examples:
  hydranet predict street.jpg --weights kitti6 --out results/
  hydranet predict frames/ --recursive --weights model.safetensors --out results/ --save overlay,raw
  hydranet predict drive.mp4 --weights kitti6 --out results/ --video-format mp4,gif --every 2
  hydranet predict 000099.png --weights kitti6 --out results/ --pointcloud --bev \\
      --calib calib_cam_to_cam.txt
  hydranet predict big.jpg --weights kitti6 --out results/ --size 384x1280 --depth-range 0,50

outputs for an input NAME (videos: .mp4/.gif instead of .jpg):
  NAME_panel.jpg NAME_overlay.jpg NAME_segmentation.jpg NAME_depth.jpg    pictures (.png with
                                                                          --image-format png)
  NAME_raw_labels.png NAME_raw_depth.png NAME_raw_depth.npy NAME_raw.json --save raw (lossless)
      (videos: NAME_raw/FRAME_labels.png ... and NAME_raw.json)
  NAME.ply NAME_bev.jpg                                                   --pointcloud, --bev

Existing outputs are never replaced without --overwrite; --skip-existing passes over the
inputs whose outputs are all there, so an interrupted run over a folder can be started again
and does only what is left. Files inside folders go to the same relative place under --out."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="segment and estimate depth on images, folders and videos",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files (PNG, JPEG, BMP, TIFF, WebP), folders, video files "
                             "(MP4, AVI, MKV, MOV, ...)")
    parser.add_argument("--weights", default="default",
                        help="weights file (.ckpt, .safetensors, or .onnx / .xml from `hydranet export`) "
                             "or registered name (default: the bundled model)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--recursive", action="store_true", help="also look into sub-folders of folders")
    parser.add_argument("--save", default="panel", metavar="LIST",
                        help=f"comma-separated outputs from {','.join(SAVE_KINDS)} (default: panel)")
    parser.add_argument("--image-format", default="jpg", choices=PICTURE_FORMATS,
                        help="format of the pictures of images: jpg (default: quality 95, full colour "
                             "resolution; a panel is written in ~5 ms) or png (lossless, 4-5x slower "
                             "to write than the network runs). Raw outputs are always lossless")
    parser.add_argument("--video-format", default="mp4", metavar="LIST",
                        help="comma-separated video formats from mp4,gif (default: mp4)")
    parser.add_argument("--size", metavar="HxW",
                        help="run the network at this size, e.g. 384x1280, or 'native'. Default: the "
                             "weights choose (the bundled model resizes each image to the focal length "
                             "it was trained for; the paper's run at native size). Results are resized "
                             "back to the input's size")
    parser.add_argument("--depth-range", metavar="LO,HI",
                        help="metres mapped to the ends of the depth colour map "
                             "(default: the model's range, 0,80 for KITTI and 0,10 for NYUD)")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="use every N-th video frame (the output fps is divided by N)")
    parser.add_argument("--backend", default="auto",
                        help=f"inference engine: auto (default: the fastest installed, OpenVINO "
                             f"first; the network is converted once and kept in "
                             f"~/.cache/hydranet/engines) or one of {', '.join(available_backends())}; "
                             "torch is the exact reference")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto (default: the precision measured within 0.5 mIoU and 2 %% abs rel "
                             "of PyTorch for registered weights: int8 for the bundled model, calibrated "
                             "once on generated street scenes; else fp32), fp32, bf16 "
                             "or int8; exporting engines only")
    parser.add_argument("--panel-height", type=int, metavar="PX",
                        help="height of each picture in the panel (default: the input's height "
                             "for images, half of it for videos, which keeps panel videos about "
                             "the size of the input and fast to encode)")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity (default 0.5)")
    parser.add_argument("--colormap", default="plasma", choices=sorted(COLORMAPS),
                        help="depth colour map (default plasma, as the reference notebooks)")
    parser.add_argument("--depth-scale", default="log", choices=DEPTH_SCALES,
                        help="how depth maps to colours: log (default: 2 against 4 m looks as different "
                             "as 20 against 40 m, so near and far both show) or linear (the reference "
                             "notebooks' look)")
    parser.add_argument("--pointcloud", action="store_true",
                        help="write a coloured PLY point cloud back-projected from depth (the camera: "
                             "--intrinsics/--calib, else each image's EXIF focal length)")
    parser.add_argument("--point-colors", default="class", choices=("class", "image"),
                        help="colour points by class (default) or by the image")
    parser.add_argument("--bev", action="store_true",
                        help="write a bird's-eye-view image of the labelled points")
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument("--intrinsics", metavar="FX,FY,CX,CY",
                        help="camera intrinsics in pixels: metric depth from camera-aware weights, "
                             "and the point cloud")
    camera.add_argument("--calib", type=Path, metavar="FILE",
                        help="KITTI calib_cam_to_cam.txt (or calib.txt); camera 02 is used")
    camera.add_argument("--hfov", type=float, metavar="DEG",
                        help="the camera's horizontal field of view in degrees, when you know no more "
                             "(a dash-cam's box says e.g. 120 or 140): square pixels, principal point at "
                             "the centre, no lens distortion; for every input, videos too")
    camera.add_argument("--ignore-exif", action="store_true",
                        help="without --intrinsics/--calib, depth uses the camera an image's EXIF "
                             "35 mm-equivalent focal length gives (phones, most digital cameras) or a "
                             "video's QuickTime one (iPhones), "
                             f"else a {ASSUMED_HFOV_DEG:g} degree field of view; this assumes the "
                             "field of view for every input")
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS, metavar="N",
                        help=f"the largest image or video frame read, in pixels (default {MAX_PIXELS}, "
                             "50 Mpx); larger ones are refused from their header, before any decoding "
                             "(images: unless --downscale-large)")
    parser.add_argument("--downscale-large", action="store_true",
                        help="read images over --max-pixels reduced to fit instead of refusing them, "
                             "and write their outputs at that size: a JPEG is decoded at 1/2, 1/4 or "
                             "1/8 straight from the file (bounded memory at any size); other formats "
                             f"are decoded whole first, so only up to {FULL_DECODE_PIXELS // 1_000_000} Mpx")
    existing_outputs = parser.add_mutually_exclusive_group()
    existing_outputs.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing_outputs.add_argument("--skip-existing", action="store_true",
                                  help="pass over inputs whose outputs all exist (to finish an "
                                       "interrupted run); an input with only some of them is an error")
    parser.set_defaults(func=run)


def _refuse_clashes(jobs: list) -> None:
    """Stop, naming the first output that exists, before anything is replaced."""
    clashes = [p for job in jobs for p in existing(job.paths)]
    if clashes:
        more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
        raise HydranetError(f"{clashes[0]} already exists{more}; pass --overwrite to replace, "
                            "--skip-existing to pass over inputs already done, or choose another --out")


# --max-pixels: from 64x64 to what Pillow opens at all (twice its own bomb warning limit).
MIN_PIXELS = 4096
MAX_PIXELS_LIMIT = 400_000_000

# -- parsing options ----------------------------------------------------------------------


def _need_cameras(jobs: list) -> None:
    """Without a stated camera, 3D outputs take each input's own camera (an image's EXIF, a
    video's QuickTime metadata): refuse, before any work, when an input has none."""
    from ..errors import InputError
    from ..inference.media import exif_camera
    from ..inference.quicktime import quicktime_focal_35mm

    missing = []
    for job in jobs:
        if job.kind == "video":
            if quicktime_focal_35mm(job.path) is None:
                missing.append(f"{job.path} states no focal length in its metadata")
            continue
        try:
            if exif_camera(job.path) is None:
                missing.append(f"{job.path} states no focal length in its EXIF")
        except InputError:
            pass  # an unreadable file is reported with its own error when its turn comes
    if missing:
        more = f" (and {len(missing) - 1} more input(s))" if len(missing) > 1 else ""
        raise HydranetError(f"--pointcloud and --bev need the camera: {missing[0]}{more}; pass --hfov DEG, "
                            "--intrinsics fx,fy,cx,cy or --calib calib_cam_to_cam.txt")


def parse_range(text: str | None) -> tuple[float, float] | None:
    """``"LO,HI"`` -> ``(LO, HI)`` with ``LO < HI``."""
    if text is None:
        return None
    try:
        lo, hi = (float(p) for p in text.split(","))
    except ValueError:
        raise HydranetError(f"--depth-range {text!r}: expected LO,HI in metres, e.g. 0,80") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise HydranetError(f"--depth-range {text!r}: LO and HI must be finite metres, e.g. 0,80")
    if not hi > lo:
        raise HydranetError(f"--depth-range {text!r}: HI must be larger than LO")
    return lo, hi


def parse_list(text: str, allowed: Sequence[str], option: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    bad = [p for p in items if p not in allowed]
    if bad or not items:
        raise HydranetError(f"{option} {text!r}: choose one or more of {','.join(allowed)}")
    return items


def _weights_error(weights: str, exc: Exception) -> HydranetError:
    if weights == "default":
        return HydranetError("no default model is bundled with this installation yet; pass "
                             "--weights FILE (.ckpt or .safetensors) or a downloaded name such as "
                             "kitti6 (see `hydranet weights list`)")
    return exc if isinstance(exc, HydranetError) else HydranetError(str(exc))


def make_predictor(args: argparse.Namespace) -> Predictor:
    try:
        predictor = Predictor(args.weights, backend=args.backend, size=parse_inference_size(args.size),
                              intrinsics=parse_camera(args.intrinsics, args.calib),
                              precision=args.precision, hfov=args.hfov)
    except WeightsNotFoundError as exc:
        raise _weights_error(args.weights, exc) from None
    if predictor.note:
        print(f"note: {predictor.note}", file=sys.stderr)
    return predictor


def run(args: argparse.Namespace) -> int:
    if args.every < 1:
        raise HydranetError(f"--every {args.every}: must be 1 or more")
    if not 0.0 <= args.alpha <= 1.0:
        raise HydranetError(f"--alpha {args.alpha}: must be between 0 and 1")
    if args.panel_height is not None and not 16 <= args.panel_height <= 4096:
        raise HydranetError(f"--panel-height {args.panel_height}: must be 16 to 4096 pixels")
    if not MIN_PIXELS <= args.max_pixels <= MAX_PIXELS_LIMIT:
        raise HydranetError(f"--max-pixels {args.max_pixels}: must be {MIN_PIXELS} to {MAX_PIXELS_LIMIT} pixels")
    opts = OutputOptions(
        save=parse_list(args.save, SAVE_KINDS, "--save"), image_format=args.image_format,
        video_formats=parse_list(args.video_format, VIDEO_FORMATS, "--video-format"),
        depth_range=parse_range(args.depth_range), alpha=args.alpha, cmap=args.colormap,
        depth_scale=args.depth_scale,
        pointcloud=args.pointcloud, bev=args.bev, point_colors=args.point_colors,
        panel_height=args.panel_height,
        intrinsics=parse_camera(args.intrinsics, args.calib),
        max_pixels=args.max_pixels, downscale_large=args.downscale_large,
        exif_camera=not args.ignore_exif and args.hfov is None,
        hfov=None if args.hfov is None else check_hfov(args.hfov, "--hfov"),
    )
    parse_inference_size(args.size)
    found, problems = collect_inputs(args.inputs, args.recursive, exclude=args.out)
    if args.out.exists() and not args.out.is_dir():
        raise HydranetError(f"--out {args.out}: exists and is not a folder")
    # Outputs are planned before the model loads, so a refusal to overwrite costs nothing.
    jobs = plan_jobs(found, args.out, opts, has_depth=True)
    if (opts.pointcloud or opts.bev) and opts.intrinsics is None and opts.hfov is None:
        _need_cameras(jobs)
    if not (args.overwrite or args.skip_existing):
        _refuse_clashes(jobs)
    for problem in problems:
        report_error(problem)
    if not jobs:
        raise HydranetError("no usable inputs; pass image files, folders or videos")

    predictor = make_predictor(args)
    cfg = predictor.config
    unknown_camera = (predictor.camera_aware and predictor.intrinsics is None and opts.hfov is None
                      and "depth" in cfg.tasks)
    if predictor.camera_aware and opts.hfov is not None and "depth" in cfg.tasks:
        print(f"camera: a {opts.hfov:g} degree horizontal field of view (--hfov), principal point at the centre")
    if unknown_camera:
        source = "" if args.ignore_exif else "the focal length an image's EXIF or a video's metadata states, else "
        print(f"camera not given: depth uses {source}a {ASSUMED_HFOV_DEG:g} degree horizontal field of "
              "view; pass --intrinsics FX,FY,CX,CY or --calib FILE for metric depth")
    has_depth = "depth" in cfg.tasks
    opts.model_name = cfg.name or str(args.weights)
    opts.label_set = cfg.label_set
    if predictor.camera_aware and has_depth:
        # The raw sidecar says which camera the depth is metric for; an image's EXIF camera
        # replaces this entry for that image (read_image_job).
        opts.extra["camera"] = (camera_record(opts.intrinsics, "stated (--intrinsics / --calib)")
                                if opts.intrinsics is not None else
                                camera_record(None, "stated (--hfov)", opts.hfov) if opts.hfov is not None
                                else camera_record(None, "assumed"))
    opts.check(has_depth)
    if not has_depth:
        jobs = plan_jobs(found, args.out, opts, has_depth=False)
    if args.skip_existing:
        # Only now: which outputs an input has depends on the model (depth or not).
        finished = [len(existing(job.paths)) == len(job.paths) for job in jobs]
        done = sum(finished)
        jobs = [job for job, f in zip(jobs, finished) if not f]
        _refuse_clashes(jobs)
        if done:
            print(f"skipped {done} input(s) whose outputs all exist (--skip-existing)")
        if not jobs:
            return 1 if problems else 0
    args.out.mkdir(parents=True, exist_ok=True)

    stats = Stats(failed=len(problems))
    start, setup0 = time.perf_counter(), predictor.setup_seconds
    run_jobs(jobs, predictor, opts, args.every, stats=stats)
    seconds = time.perf_counter() - start
    # The rate a run at these sizes keeps: making engines (at start, and once per new input
    # size) is reported apart.
    run_setup = predictor.setup_seconds - setup0
    running = seconds - run_setup if run_setup >= 0.5 else seconds
    fps = stats.frames / running if running > 0 else 0.0
    setup = predictor.setup_seconds
    made = f", and {setup:.1f} s making engines" if setup >= 0.5 else ""
    print(f"done: {stats.images} image(s), {stats.videos} video(s), {stats.frames} frames in "
          f"{running:.1f} s{made}; model {predictor.model_ms_per_frame:.1f} ms/frame "
          f"({predictor.engine}), end to end {fps:.1f} frames/s; outputs in {args.out}")
    if unknown_camera and stats.exif_cameras:
        print(f"camera: from the EXIF focal length for {stats.exif_cameras} of {stats.images} image(s), "
              f"{ASSUMED_HFOV_DEG:g} degrees assumed for the rest")
    if stats.failed:
        report_error(f"{stats.failed} input(s) failed; see the messages above")
        return 1
    return 0


