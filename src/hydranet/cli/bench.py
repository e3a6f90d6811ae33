"""``hydranet bench``: latency and frames per second of every installed engine, and of video end to end."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import InputError
from .options import parse_size_option

DESCRIPTION = """\
Time the network on this machine with every installed engine and precision: the
reference baseline (PyTorch eager fp32, NCHW, 5x5 max-pools, as the authors' notebooks
run it), hydranet's PyTorch backend, ONNX Runtime (fp32, INT8), OpenVINO (fp32, bf16
where the CPU has it, INT8) and, as the yardstick, a plain static export of the same network
(torch.onnx.export at the fixed size, OpenVINO and NNCF with default settings). For each size
and batch it prints the median and 90th percentile latency, frames per second, the speedup
over the baseline and the ratio to the plain INT8 export measured in the same run, then the end-to-end video throughput of `hydranet predict` (decode, normalise,
infer, render, encode) against the model alone.

Engines are timed in interleaved rounds so that load from other processes falls on all of
them alike; on a shared machine, compare ratios within one run and repeat."""

EPILOG = """\
examples:
  hydranet bench                                  # everything (several minutes)
  hydranet bench --quick                          # 192x640, batch 1, fewer runs
  hydranet bench --sizes 384x1280 --batch 1 --backends openvino --precisions int8
  hydranet bench --weights default --calibration frames/ --json bench.json

Without --weights the network has random weights (speed does not depend on them).
INT8 engines are calibrated on --calibration images or on generated street scenes."""

DEFAULT_SIZES = "192x640,384x1280,480x640"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="speed of every engine and precision, and of video end to end",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="weights file or name (default: random weights)")
    parser.add_argument("--model", default="kitti6", help="configuration for random weights (default kitti6)")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"input sizes HxW, comma separated ({DEFAULT_SIZES})")
    parser.add_argument("--batch", default="1,4", help="batch sizes, comma separated (default 1,4)")
    parser.add_argument("--backends", help="subset of torch-reference,torch,onnxruntime,openvino (openvino includes the plain "
                             "export), or engine keys such as plain-openvino-int8 (default: installed)")
    parser.add_argument("--precisions", help="subset of fp32,bf16,int8 (default all)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per engine and cell (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up runs (default 5)")
    parser.add_argument("--max-seconds", type=float, default=15.0,
                        help="time budget per engine and cell; slow engines get fewer runs, at least 5")
    parser.add_argument("--threads", type=int, help="threads per engine (default: the CPUs available)")
    parser.add_argument("--calibration", metavar="DIR", help="images for INT8 calibration")
    parser.add_argument("--no-video", action="store_true", help="skip the end-to-end video measurement")
    parser.add_argument("--video-size", help="clip size HxW (default: the first size)")
    parser.add_argument("--video-frames", type=int, default=90, help="frames in the generated clip (default 90)")
    parser.add_argument("--video-save", default="panel", help="what predict writes (default panel; e.g. overlay)")
    parser.add_argument("--video-engines",
                        help="engines for the video test, comma separated (default: the fastest at that size)")
    parser.add_argument("--quick", action="store_true", help="192x640, batch 1, 10 runs")
    parser.add_argument("--json", metavar="FILE", help="write every measurement to this JSON file")
    parser.set_defaults(func=run)


def _sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        size = parse_size_option(part, option="--sizes")
        if size is None:
            raise InputError("--sizes: give fixed sizes like 192x640")
        sizes.append(size)
    return sizes


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"{option} {text!r}: give whole numbers, comma separated") from None
    if any(v < 1 for v in values):
        raise InputError(f"{option} {text!r}: must be at least 1")
    return values


def run(args: argparse.Namespace) -> int:
    from ..benchmark import machine
    from ..benchmark.report import format_table, format_video, to_json
    from ..benchmark.suite import (
        BASELINE,
        ENGINES,
        PLAIN,
        build_engines,
        run_grid,
        select_engines,
    )
    from ..checkpoints import load_model
    from ..export.calibration import calibration_batches
    from ..export.openvino import cpu_threads
    from ..model import create_model

    if args.quick:
        args.sizes, args.batch, args.runs = "192x640", "1", min(args.runs, 10)
    sizes = _sizes(args.sizes)
    batches = _ints(args.batch, "--batch")
    threads = args.threads or cpu_threads()
    backends = args.backends.split(",") if args.backends else None
    precisions = args.precisions.split(",") if args.precisions else None
    keys = select_engines(backends, precisions)
    if not keys:
        raise InputError("no engine matches --backends / --precisions among the installed ones")
    log = lambda text: print(text, file=sys.stderr)  # noqa: E731

    if args.weights:
        model, weights = load_model(args.weights), str(args.weights)
    else:
        try:
            model = create_model(args.model)
        except KeyError as exc:
            raise InputError(f"--model: {exc.args[0]}") from None
        weights = f"random {args.model}"
    calibration = None
    if any(ENGINES[k][1] == "int8" for k in keys):
        calibration = calibration_batches(model.config, args.calibration, 16, sizes[0], seed=3)

    cpu = machine.cpu_info()
    load_before = machine.load_average()
    started = time.time()
    engines, notes = build_engines(model, keys, threads, calibration, log)
    rows = run_grid(model, engines, sizes, batches, args.runs, args.warmup, args.max_seconds, log)

    videos = []
    if not args.no_video:
        video_size = _sizes(args.video_size)[0] if args.video_size else sizes[0]
        if args.video_engines:
            video_keys = [k for k in args.video_engines.split(",") if k in {e.key for e in engines} and k not in PLAIN]
        else:
            ours = [r for r in rows if r.batch == 1 and r.engine != BASELINE and r.engine not in PLAIN]
            cell = [r for r in ours if (r.height, r.width) == video_size] or ours
            video_keys = [max(cell, key=lambda r: r.fps).engine] if cell else []
        from ..benchmark.video import measure_video

        for key in video_keys:
            backend, precision, _ = ENGINES[key]
            options = {"threads": threads}
            if backend != "torch":
                options["precision"] = precision
            if precision == "int8":
                options["calibration"] = calibration
            log(f"video end to end: {key}, {video_size[0]}x{video_size[1]}, {args.video_frames} frames ...")
            videos.append(measure_video(model, key, backend, options, video_size, args.video_frames,
                                        args.video_save))
    load_after = machine.load_average()

    print(f"hydranet bench: {machine.describe_cpu(cpu)}; {threads} threads; weights: {weights}")
    if load_before and load_after:
        print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
              f"(other processes share the CPUs: compare ratios within this run)")
    v = machine.versions()
    print("versions: " + ", ".join(f"{k} {v[k]}" for k in ("torch", "onnxruntime", "openvino", "nncf") if k in v))
    print()
    print(format_table(rows))
    if videos:
        print()
        print(format_video(videos))
    for note in notes:
        print(f"note: {note}")
    if args.json:
        record = to_json(rows, videos, machine=cpu, load_before=load_before, load_after=load_after,
                         versions=v, threads=threads, weights=weights, notes=notes,
                         settings={"sizes": [list(s) for s in sizes], "batches": batches, "runs": args.runs,
                                   "warmup": args.warmup, "max_seconds": args.max_seconds},
                         setup_seconds={e.key: round(e.setup_seconds, 2) for e in engines},
                         started=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
                         seconds=round(time.time() - started, 1))
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1))
        print(f"\nwrote {args.json}")
    return 0
