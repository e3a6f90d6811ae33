"""Where hydranet's INT8 loses time against the plain export: its quantization settings, one by one.

    python benchmarks/int8_settings.py [--size 192x640] [--runs 40]

kitti6 with random weights (speed does not depend on them), batch 1, one static shape. The
same ONNX -> OpenVINO graph of hydranet (``convert_to_openvino``) is quantized by NNCF with
hydranet's settings for this CPU (``hydranet.export.quantize.quantize_openvino``: the
performance preset, every convolution INT8, with VNNI 8-bit weights, without 7-bit ones), with
NNCF's defaults, and with other choices one by one, among them the settings hydranet used
without VNNI until 2026-12-06 (mixed preset, the first and the heads' output convolutions in
fp32, 7-bit weights); the plain static export (``hydranet.benchmark.plain``) runs beside them.
All compiled alike and timed in interleaved rounds: compare within one run. Prints the machine
and the median times. ``benchmarks/as_avx2.py`` runs it as on a CPU without VNNI.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import sys

import nncf
import torch

from hydranet.benchmark.machine import cpu_info, describe_cpu, load_average
from hydranet.benchmark.plain import PlainOpenVINO
from hydranet.benchmark.suite import bench_inputs, default_calibration
from hydranet.benchmark.timing import measure_interleaved
from hydranet.export import quantize
from hydranet.export.cpu import has_vnni
from hydranet.export.openvino import compile_openvino, convert_to_openvino, cpu_threads
from hydranet import create_model


def first_and_output_convolutions(ov_model) -> list[str]:
    """The convolution reading the image and those writing the outputs (through their bias)."""
    convs = ("Convolution", "GroupConvolution")
    names = [op.get_friendly_name() for op in ov_model.get_ordered_ops()
             if op.get_type_name() in convs and op.input_value(0).get_node().get_type_name() == "Parameter"]
    for result in ov_model.get_results():
        node = result.input_value(0).get_node()
        while node.get_type_name() in ("Add", "StridedSlice", "Slice"):
            inputs = [v.get_node() for v in node.input_values()]
            node = next((n for n in inputs if n.get_type_name() != "Constant"), inputs[0])
        if node.get_type_name() in convs:
            names.append(node.get_friendly_name())
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="192x640")
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    logging.getLogger("nncf").setLevel(logging.ERROR)
    torch.manual_seed(0)
    model = create_model("kitti6").eval()
    threads = cpu_threads()
    calibration = default_calibration(model, 16, (h, w))
    x = bench_inputs(model, (h, w), 1)
    overflow = nncf.OverflowFix.DISABLE if has_vnni() else nncf.OverflowFix.ENABLE

    def graph():
        return convert_to_openvino(copy.deepcopy(model))

    def nncf_quantize(**options):
        with contextlib.redirect_stdout(sys.stderr):
            return nncf.quantize(graph(), nncf.Dataset(calibration), subset_size=len(calibration), **options)

    kept = nncf.IgnoredScope(names=first_and_output_convolutions(graph()))
    variants = {
        f"hydranet's settings for this CPU ({'with' if has_vnni() else 'without'} VNNI)":
            lambda: quantize.quantize_openvino(graph(), calibration),
        "hydranet's graph, NNCF defaults": lambda: nncf_quantize(),
        "  + the mixed preset (this CPU's weight bits)": lambda: nncf_quantize(preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=True,
                                           advanced_parameters=nncf.AdvancedQuantizationParameters(
                                               overflow_fix=overflow)),
        "  + the fp32 ends only": lambda: nncf_quantize(ignored_scope=kept),
        "  + MIXED, 7-bit weights and the fp32 ends (until 2026-12-06 without VNNI)": lambda: nncf_quantize(
            preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=True, ignored_scope=kept,
            advanced_parameters=nncf.AdvancedQuantizationParameters(overflow_fix=nncf.OverflowFix.ENABLE)),
    }
    engines = {}
    for name, make in variants.items():
        print(f"preparing {name.strip()} ...", file=sys.stderr, flush=True)
        request = compile_openvino(make(), (1, 3, h, w), "int8", threads).create_infer_request()
        engines[name] = (lambda r: (lambda a: r.infer({0: a})))(request)
    engines["plain static export, NNCF defaults"] = PlainOpenVINO(model, threads, lambda size: calibration)
    for run in engines.values():
        run(x)  # compile / first call outside the timing
    timings = measure_interleaved(list(engines.values()), x, runs=args.runs, max_seconds=30)
    load = load_average()
    print(f"{describe_cpu(cpu_info())}; {threads} threads; load average {load[0]:.2f}" if load else
          f"{describe_cpu(cpu_info())}; {threads} threads")
    print(f"kitti6 {h}x{w} batch 1, INT8, median of interleaved runs:")
    for name, t in zip(engines, timings):
        print(f"{t.median_ms:8.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
