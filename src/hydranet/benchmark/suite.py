"""The engines `hydranet bench` compares, and the size x batch grid it times them on."""

from __future__ import annotations

import copy
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..export.calibration import calibration_batches, generated_images, resize_batches, to_batches
from ..inference.backends import OPTIONAL_BACKENDS, TorchBackend, create_backend
from ..model import HydraNet
from .baseline import ReferenceEagerBackend
from .plain import PlainOpenVINO
from .timing import measure_interleaved

BASELINE = "torch-reference"
# Every engine hydranet can time: key -> (backend, precision, label).
ENGINES: dict[str, tuple[str, str, str]] = {
    BASELINE: ("torch-reference", "fp32", "PyTorch eager, NCHW, MaxPool2d 5x5 (reference notebooks)"),
    "torch": ("torch", "fp32", "PyTorch eager, channels_last, separable pools (TorchBackend)"),
    "onnxruntime-fp32": ("onnxruntime", "fp32", "ONNX Runtime"),
    "onnxruntime-int8": ("onnxruntime", "int8", "ONNX Runtime INT8 (static QDQ)"),
    "openvino-fp32": ("openvino", "fp32", "OpenVINO"),
    "openvino-bf16": ("openvino", "bf16", "OpenVINO bf16 hint"),
    "openvino-int8": ("openvino", "int8", "OpenVINO INT8 (NNCF)"),
    "plain-openvino-fp32": ("openvino", "fp32", "plain static export: ONNX -> OpenVINO, defaults"),
    "plain-openvino-int8": ("openvino", "int8", "plain static export: ONNX -> OpenVINO, NNCF defaults"),
}
# The yardstick, not an engine hydranet runs: every other engine is compared with its INT8.
PLAIN = ("plain-openvino-fp32", "plain-openvino-int8")
PLAIN_INT8 = "plain-openvino-int8"


@dataclass
class Engine:
    """A ready-to-run engine."""

    key: str
    backend: str
    precision: str
    label: str
    run: Callable[[np.ndarray], object]
    setup_seconds: float


@dataclass
class Row:
    """One engine at one size and batch."""

    engine: str
    backend: str
    precision: str
    label: str
    height: int
    width: int
    batch: int
    median_ms: float
    p90_ms: float
    runs: int
    fps: float
    speedup: float | None = None
    times_ms: list[float] = field(default_factory=list)
    vs_plain_int8: float | None = None


def installed(backend: str) -> bool:
    """Whether an optional backend's package is importable (torch always is)."""
    if backend not in OPTIONAL_BACKENDS:
        return True
    return importlib.util.find_spec(OPTIONAL_BACKENDS[backend][2]) is not None


def select_engines(backends: Sequence[str] | None, precisions: Sequence[str] | None) -> list[str]:
    """Engine keys for the chosen backends and precisions (default: all installed); baseline first."""
    keys = []
    for key, (backend, precision, _) in ENGINES.items():
        if key != BASELINE and backends and backend not in backends and key not in backends:
            continue
        if key == BASELINE and backends and BASELINE not in backends and "torch" not in backends:
            continue
        if precisions and precision not in precisions and key not in (BASELINE, "torch"):
            continue
        if installed(backend):
            keys.append(key)
    return keys


def build_engines(model: HydraNet, keys: Sequence[str], threads: int,
                  calibration: list[np.ndarray], log: Callable[[str], None] = print) -> tuple[list[Engine], list[str]]:
    """Create each engine (export, quantize, compile); ``(engines, notes on skipped ones)``."""
    torch.set_num_threads(threads)
    engines, notes = [], []
    for key in keys:
        backend, precision, label = ENGINES[key]
        start = time.perf_counter()
        log(f"preparing {key} ...")
        if key == BASELINE:
            run: Callable = ReferenceEagerBackend(model)
        elif key in PLAIN:
            cal = None if precision != "int8" else (lambda size: resize_batches(calibration, size))
            run = PlainOpenVINO(model, threads, cal)
        elif backend == "torch":
            run = TorchBackend(copy.deepcopy(model), channels_last=True, threads=threads)
        else:
            options = {"precision": precision, "threads": threads}
            if precision == "int8":
                options["calibration"] = calibration
            run = create_backend(backend, copy.deepcopy(model), **options)
        if key == "openvino-bf16":
            real = run.effective_precision()  # type: ignore[attr-defined]
            if real != "bf16":
                notes.append(f"{key}: skipped, this CPU has no bf16 instructions (AVX512_BF16 / AMX), "
                             f"OpenVINO would run {real} (= openvino-fp32)")
                continue
        engines.append(Engine(key, backend, precision, label, run, time.perf_counter() - start))
    return engines, notes


def bench_inputs(model: HydraNet, size: tuple[int, int], batch: int, seed: int = 11) -> np.ndarray:
    """A normalised batch of generated street scenes (content does not change the cost)."""
    return np.ascontiguousarray(np.concatenate(to_batches(generated_images(batch, size, seed), model.config)))


def run_grid(model: HydraNet, engines: Sequence[Engine], sizes: Sequence[tuple[int, int]],
             batches: Sequence[int], runs: int, warmup: int, max_seconds: float,
             log: Callable[[str], None] | None = None) -> list[Row]:
    """Time every engine at every size and batch; speedups against the baseline of the same cell."""
    from tqdm import tqdm

    rows: list[Row] = []
    cells = [(s, b) for s in sizes for b in batches]
    bar = tqdm(total=len(cells), unit="cell", desc="bench", disable=None, file=sys.stderr, leave=False)
    for (h, w), batch in cells:
        x = bench_inputs(model, (h, w), batch)
        bar.set_postfix_str(f"{h}x{w} batch {batch}")
        if log and bar.disable:
            log(f"timing {h}x{w} batch {batch} ...")
        for e in engines:
            e.run(x)  # the first call at a shape converts or compiles for it: not part of the timing
        timings = measure_interleaved([e.run for e in engines], x, runs=runs, warmup=warmup,
                                      max_seconds=max_seconds)
        cell = []
        for engine, timing in zip(engines, timings):
            precision = engine.precision
            if isinstance(engine.run, PlainOpenVINO) and engine.run.effective_precision() == "bf16":
                precision += " (bf16 rest)"  # OpenVINO's default on CPUs with bf16: say what really ran
            cell.append(Row(engine.key, engine.backend, precision, engine.label, h, w, batch,
                            timing.median_ms, timing.p90_ms, len(timing.times_ms),
                            1000.0 * batch / timing.median_ms, None, [round(t, 3) for t in timing.times_ms]))
        base = next((r for r in cell if r.engine == BASELINE), None)
        if base is not None:
            for r in cell:
                r.speedup = base.median_ms / r.median_ms
        plain = next((r for r in cell if r.engine == PLAIN_INT8), None)
        if plain is not None:
            for r in cell:
                r.vs_plain_int8 = plain.median_ms / r.median_ms
        rows.extend(cell)
        bar.update()
    bar.close()
    return rows


def default_calibration(model: HydraNet, count: int = 16, size: tuple[int, int] = (192, 640)) -> list[np.ndarray]:
    """Generated calibration inputs for INT8 engines (speed does not depend on them)."""
    return calibration_batches(model.config, None, count, size, seed=3)
