"""hydranet's OpenVINO engines beside a plain static export of the same network, in one run.

The plain export is what anyone would write in ten lines: ``torch.onnx.export`` at a fixed
size, ``openvino.Core().read_model``, NNCF ``quantize`` with default settings on the same
calibration inputs, compiled with ``INFERENCE_NUM_THREADS`` = the usable cores and
``PERFORMANCE_HINT=LATENCY``. Engines are timed in interleaved rounds (hydranet.benchmark
.timing), so load from elsewhere falls on all alike; compare them as ratios within a run.

    python benchmarks/plain_export.py                       # kitti6 at 192x640, batch 1
    python benchmarks/plain_export.py --weights default --size 360x480 --json out.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

from hydranet.benchmark.baseline import ReferenceEagerBackend
from hydranet.benchmark.machine import cpu_info, describe_cpu, load_average
from hydranet.benchmark.plain import PlainOpenVINO
from hydranet.benchmark.suite import bench_inputs, default_calibration
from hydranet.benchmark.timing import measure_interleaved
from hydranet.export.openvino import cpu_threads
from hydranet.inference.backends import create_backend
from hydranet.checkpoints import load_model
from hydranet import create_model


def parse_size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None,
                        help="weights name or file (default: kitti6 with random weights, as in hydranet bench)")
    parser.add_argument("--size", default="192x640", type=parse_size, help="HxW (default 192x640)")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--no-reference", action="store_true", help="skip the slow reference eager path")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    threads = cpu_threads()
    torch.set_num_threads(threads)
    model = (create_model("kitti6") if args.weights is None else load_model(args.weights)).eval()
    h, w = args.size
    calibration = [c for c in default_calibration(model, 16, (h, w))]
    x = bench_inputs(model, (h, w), 1)
    engines: dict[str, object] = {}
    build_s: dict[str, float] = {}
    print(f"machine: {describe_cpu(cpu_info())}; load {load_average()}", flush=True)
    for name, make in [
        ("plain fp32", lambda: PlainOpenVINO(model, threads)),
        ("plain int8", lambda: PlainOpenVINO(model, threads, lambda size: calibration)),
        ("hydranet openvino fp32", lambda: create_backend("openvino", copy.deepcopy(model), precision="fp32",
                                                          threads=threads, cache=False)),
        ("hydranet openvino int8", lambda: create_backend("openvino", copy.deepcopy(model), precision="int8",
                                                          threads=threads, calibration=calibration,
                                                          cache=False)),
        ("hydranet openvino bf16", lambda: create_backend("openvino", copy.deepcopy(model), precision="bf16",
                                                          threads=threads, cache=False)),
    ] + ([] if args.no_reference else [("reference eager NCHW", lambda: ReferenceEagerBackend(model))]):
        start = time.perf_counter()
        print(f"preparing {name} ...", file=sys.stderr, flush=True)
        engines[name] = make()
        if isinstance(engines[name], PlainOpenVINO):
            engines[name].prepare(x.shape)  # the static graph is built for this one shape
        build_s[name] = time.perf_counter() - start
    timings = measure_interleaved(list(engines.values()), x, runs=args.runs, max_seconds=20.0)
    plain8 = timings[1].median_ms
    ref = timings[-1].median_ms if not args.no_reference else None
    print(f"\n{model.config.name or 'model'} {h}x{w} batch 1, {threads} threads")
    print(f"{'engine':<30}{'median ms':>10}{'p90 ms':>9}{'fps':>8}{'vs plain int8':>15}{'vs reference':>14}"
          f"{'prepare s':>11}")
    rows = []
    for (key, engine), t in zip(engines.items(), timings):
        vs_ref = f"{ref / t.median_ms:.1f}x" if ref else "-"
        name = f"{key} ({engine.effective_precision()} rest)" if isinstance(engine, PlainOpenVINO) else key
        print(f"{name:<30}{t.median_ms:>10.1f}{t.p90_ms:>9.1f}{1000 / t.median_ms:>8.1f}"
              f"{plain8 / t.median_ms:>14.2f}x{vs_ref:>14}{build_s[key]:>11.1f}")
        rows.append({"engine": name, "median_ms": t.median_ms, "p90_ms": t.p90_ms, "runs": len(t.times_ms),
                     "prepare_s": build_s[key]})
    if args.json:
        args.json.write_text(json.dumps({"machine": describe_cpu(cpu_info()), "size": [h, w],
                                         "threads": threads, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
