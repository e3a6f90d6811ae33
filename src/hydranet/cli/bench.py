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
where the CPU has it, INT8) and, as the yardstick, a plain static export of the same
network (torch.onnx.export at the fixed size, OpenVINO and NNCF with default settings).

With nothing named, the first table is the bundled default at 360x480 and at the size a
KITTI frame (375x1242) is fed to it at, the second kitti6 (random weights: speed does not
depend on them) at 192x640 and 384x1280. For each size and batch: the median and 90th
percentile latency, frames per second, the speedup over the baseline and the ratio to the
plain INT8 export, all measured in the same run; then the end-to-end video throughput of
`hydranet predict` with the first table's model (decode, normalise, infer, render, encode)
against the model alone. The first line names the CPU and its vector extensions.

Engines are timed in interleaved rounds so that load from other processes falls on all of
them alike; on a shared machine, compare ratios within one run and repeat."""

EPILOG = """\
examples:
  hydranet bench                                  # everything (many minutes)
  hydranet bench --quick                          # kitti6 192x640, batch 1, fewer runs
  hydranet bench --sizes 384x1280 --batch 1 --backends openvino --precisions int8
  hydranet bench --weights default --calibration frames/ --json bench.json

--sizes or --model alone time random weights of that configuration (default kitti6).
INT8 engines are calibrated on --calibration images or on generated street scenes."""

DEFAULT_SIZES = "192x640,384x1280"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="speed of every engine and precision, and of video end to end",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="weights file or name (default: random weights)")
    parser.add_argument("--model", help="configuration for random weights (default kitti6)")
    parser.add_argument("--sizes", help=f"input sizes HxW, comma separated (default {DEFAULT_SIZES}; with nothing "
                                        "named, the bundled default first at 360x480 and a KITTI frame's size)")
    parser.add_argument("--batch", help="batch sizes, comma separated (default 1,4)")
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
    parser.add_argument("--video-frames", type=int, default=300,
                        help="frames in the generated clip (default 300; the first frame's one-off latency, "
                             "about 30 ms, weighs more in a shorter clip)")
    parser.add_argument("--video-repeats", type=int, default=5,
                        help="end-to-end and model-only runs, alternated; medians are reported (default 5)")
    parser.add_argument("--video-save", default="panel", help="what predict writes (default panel; e.g. overlay)")
    parser.add_argument("--video-engines",
                        help="engines for the video test, comma separated (default: the fastest at that size)")
    parser.add_argument("--quick", action="store_true",
                        help="10 runs, and unless --sizes / --batch say otherwise kitti6 at 192x640, batch 1")
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


# A KITTI frame (375x1242, fx 721.5): the bundled default sees it at its canonical scale.
KITTI_FRAME = (375, 1242)
KITTI_K = (721.5377, 721.5377, 609.5593, 172.854)


def default_model_sizes(config) -> list[tuple[int, int]]:
    """The bundled default's input sizes: CamVid's native 360x480 and what a KITTI frame becomes."""
    from ..inference.camera import Intrinsics
    from ..inference.pipeline import plan_input

    net, _ = plan_input(config, KITTI_FRAME, camera=Intrinsics(*KITTI_K, size=KITTI_FRAME))
    return [(360, 480), tuple(net) if net is not None else KITTI_FRAME]


def run(args: argparse.Namespace) -> int:
    if args.video_frames < 1 or args.video_repeats < 1:
        raise InputError("--video-frames and --video-repeats must be at least 1")
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
    from ..model import build_model

    if args.quick:
        # What the user named wins; --quick only fills in what was left to defaults.
        args.sizes = args.sizes or "192x640"
        args.batch = args.batch or "1"
        args.runs = min(args.runs, 10)
    args.batch = args.batch or "1,4"
    batches = _ints(args.batch, "--batch")
    threads = args.threads or cpu_threads()
    backends = args.backends.split(",") if args.backends else None
    precisions = args.precisions.split(",") if args.precisions else None
    keys = select_engines(backends, precisions)
    if not keys:
        raise InputError("no engine matches --backends / --precisions among the installed ones")
    log = lambda text: print(text, file=sys.stderr)  # noqa: E731

    # (model, its name in the report, sizes): with nothing named, the bundled default at the sizes
    # users run it at first, then kitti6 (random weights) at the paper's KITTI sizes.
    plans = []
    if args.weights:
        plans.append((load_model(args.weights), str(args.weights), _sizes(args.sizes or DEFAULT_SIZES)))
    else:
        if args.model is None and args.sizes is None:
            default = load_model("default")
            plans.append((default, "default (bundled)", default_model_sizes(default.config)))
        name = args.model or "kitti6"
        try:
            model = build_model(name)
        except KeyError as exc:
            raise InputError(f"--model: {exc.args[0]}") from None
        plans.append((model, f"random {name}", _sizes(args.sizes or DEFAULT_SIZES)))

    cpu = machine.cpu_info()
    load_before = machine.load_average()
    started = time.time()
    tables, notes = [], []
    for model, weights, sizes in plans:
        calibration = None
        if any(ENGINES[k][1] == "int8" for k in keys):
            calibration = calibration_batches(model.config, args.calibration, 16, sizes[0], seed=3)
        built, built_notes = build_engines(model, keys, threads, calibration, log)
        rows = run_grid(model, built, sizes, batches, args.runs, args.warmup, args.max_seconds, log)
        tables.append((weights, sizes, rows, built, calibration, model))
        notes += [n for n in built_notes if n not in notes]

    videos = []
    if not args.no_video:
        weights, sizes, rows, built, calibration, model = tables[0]
        video_size = _sizes(args.video_size)[0] if args.video_size else sizes[0]
        if args.video_engines:
            video_keys = [k for k in args.video_engines.split(",") if k in {e.key for e in built} and k not in PLAIN]
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
            log(f"video end to end: {weights}, {key}, {video_size[0]}x{video_size[1]}, {args.video_frames} frames ...")
            videos.append(measure_video(model, key, backend, options, video_size, args.video_frames,
                                        args.video_save, repeats=args.video_repeats))
    load_after = machine.load_average()

    print(f"hydranet bench: {machine.describe_cpu(cpu)}; {threads} threads")
    if load_before and load_after:
        print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
              f"(other processes share the CPUs: compare ratios within this run)")
    v = machine.versions()
    print("versions: " + ", ".join(f"{k} {v[k]}" for k in ("torch", "onnxruntime", "openvino", "nncf") if k in v))
    for weights, sizes, rows, *_ in tables:
        print(f"\nweights: {weights}")
        print(format_table(rows))
    if videos:
        print(f"\nvideo end to end, weights: {tables[0][0]}")
        print(format_video(videos))
    for note in notes:
        print(f"note: {note}")
    if args.json:
        all_rows = [r for _, _, rows, *_ in tables for r in rows]
        record = to_json(all_rows, videos, machine=cpu, load_before=load_before, load_after=load_after,
                         versions=v, threads=threads, weights=[t[0] for t in tables], notes=notes,
                         tables=[{"weights": w, "sizes": [list(x) for x in sz], "rows": len(r)}
                                 for w, sz, r, *_ in tables],
                         settings={"sizes": [list(x) for t in tables for x in t[1]], "batches": batches,
                                   "runs": args.runs, "warmup": args.warmup, "max_seconds": args.max_seconds},
                         setup_seconds={w: {e.key: round(e.setup_seconds, 2) for e in built}
                                        for w, _, _, built, *_ in tables},
                         started=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
                         seconds=round(time.time() - started, 1))
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1))
        print(f"\nwrote {args.json}")
    return 0
