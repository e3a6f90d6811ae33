"""OpenVINO backend (CPU): fp32, bf16 (where the CPU supports it) or INT8 quantized by NNCF."""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CheckpointError
from ...export.calibration import CalibrationSource
from ...export.openvino import (
    PRECISIONS,
    compile_openvino,
    convert_to_openvino,
    cpu_threads,
    effective_precision,
    read_openvino,
    save_openvino,
    set_rt_metadata,
)
from ...export.cache import entry_path, mark_used, model_digest, prune
from ...export.offline import import_openvino
from ...export.quantize import quantize_openvino
from ...model import HydraNet
from .base import CompiledByShape, ExportedBackend, GraphsBySize, SetupClock, Size, check_batch, is_image_batch

ov = import_openvino()  # with OpenVINO's telemetry off: hydranet uses no network

# Compiled models kept per input shape: a static shape compiles in ~0.2 s and runs
# faster than the dynamic model.
_MAX_COMPILED = 4
# A compiled model's key: the input's full shape, and whether it takes uint8 images.
Key = tuple[tuple[int, ...], bool]


def _static_size(ov_model) -> Size | None:
    shape = ov_model.inputs[0].get_partial_shape()
    if shape.rank.is_static and len(shape) == 4 and shape[2].is_static and shape[3].is_static:
        return int(shape[2].get_length()), int(shape[3].get_length())
    return None


class OpenVINOBackend(ExportedBackend):
    """A HydraNet compiled by OpenVINO for the CPU.

    ``model`` is a loaded :class:`HydraNet` (converted here through ONNX, with dynamic
    height and width, or once per input size for networks whose graph depends on it) or the
    path of an IR ``.xml`` (or ``.onnx``) written by ``hydranet export``. ``precision``:
    ``fp32``, ``bf16`` (the inference precision hint; CPUs without AVX512_BF16 / AMX run
    f32, see :meth:`effective_precision`) or ``int8`` (NNCF post-training quantization on
    ``calibration``: a folder, a list of normalised arrays, or None for generated scenes).
    ``hint="throughput"`` uses OpenVINO's multi-stream mode for large batches. ``cache``:
    keep converted (and quantized) graphs on disk (:mod:`hydranet.export.cache`), so the
    next process with the same weights, size, precision, engine and CPU skips the work.

    A call takes a normalised float32 ``(N, 3, H, W)`` batch, or uint8 RGB images
    ``(N, H, W, 3)`` (:attr:`takes_images`), which the compiled graph converts and normalises
    itself with the weights' mean and std: the pipeline then skips that pass over every
    frame (about 0.6 ms a 360x480 frame on one core), and the engine's time does not grow
    (bundled model, 360x480 INT8: 12.8 ms a call, 13.0 with the float input).
    """

    name = "openvino"
    takes_images = True

    def __init__(self, model: HydraNet | str | Path, precision: str = "fp32", threads: int | None = None,
                 calibration: str | Path | list[np.ndarray] | None = None,
                 calibration_sizes: list[Size] | None = None, calibration_count: int = 32,
                 hint: str = "latency", cache: bool = True) -> None:
        if precision not in PRECISIONS:
            raise CheckpointError(f"openvino backend: precision {precision!r} is not supported; "
                                  f"choose from {', '.join(PRECISIONS)}")
        self._model: HydraNet | None = None
        self.cache = cache
        self._digest: str | None = None
        fixed_size: Size | None = None
        source = "model"
        if isinstance(model, HydraNet):
            self.config = model.config
            self._model = model
            file_precision = "fp32"
        else:
            ov_model, self.config, file_precision = read_openvino(model)
            fixed_size = _static_size(ov_model)
            source = str(model)
        if file_precision == "int8":
            precision = "int8"  # a quantized IR is int8 whatever was asked
        elif file_precision == "bf16" and precision == "fp32":
            precision = "bf16"  # the exported hint
        self.precision = precision
        self._quantize = precision == "int8" and file_precision != "int8"
        self._calibration = CalibrationSource(self.config, calibration, calibration_count,
                                              [fixed_size] if fixed_size else calibration_sizes)
        self.setup = SetupClock()
        self._graphs = GraphsBySize(self._prepare, source, fixed_size)
        with self.setup.timing():  # exporting and quantizing count as set-up
            if self._model is not None:
                self._graphs.prepare_dynamic()
            else:
                self._graphs.add(fixed_size, quantize_openvino(ov_model, self._calibration.batches(fixed_size))
                                 if self._quantize else ov_model)
        self.threads = int(threads or cpu_threads())
        self.hint = hint
        self._compiled = CompiledByShape(self._compile, _MAX_COMPILED, self.setup)
        self._streamed = CompiledByShape(self._compile_streams, _MAX_COMPILED, self.setup)

    def _prepare(self, size: Size | None) -> Any:
        cached = self._cache_entry(size)
        if cached is not None and cached.is_file() and cached.with_suffix(".bin").is_file():
            try:
                graph = read_openvino(cached)[0]
                mark_used(cached)
                return graph
            except CheckpointError:
                pass  # a damaged entry is made again below
        ov_model = convert_to_openvino(self._model, size)
        if self._quantize:
            ov_model = quantize_openvino(ov_model, self._calibration.batches(size))
        if cached is not None:
            try:
                set_rt_metadata(ov_model, self.config, "int8" if self._quantize else "fp32", size)
                save_openvino(ov_model, cached)
                prune(keep=cached)
            except OSError:
                pass  # a read-only cache costs the next run the conversion, nothing else
        return ov_model

    def _cache_entry(self, size: Size | None) -> Path | None:
        """The disk cache file of the graph for ``size`` (None: cache off or no model)."""
        if self._model is None or not self.cache:
            return None
        if self._digest is None:
            self._digest = model_digest(self._model)
        calibration = self._calibration.digest(size) if self._quantize else ""
        return entry_path(f"openvino-{ov.get_version().split('-')[0]}", self._digest, size,
                          "int8" if self._quantize else "fp32", calibration)

    def _graph(self, key: Key) -> tuple[Any, tuple[int, ...] | None]:
        """``(graph, shape to compile it at)`` for an input ``key``."""
        shape, images = key
        if not images:
            return self._graphs.get((shape[2], shape[3])), shape
        n, h, w, _ = shape
        return with_image_input(self._graphs.get((h, w)), (n, 3, h, w), self.config.mean, self.config.std), None

    def _compile(self, key: Key) -> tuple[Any, Any, list[str]]:
        graph, shape = self._graph(key)
        compiled = compile_openvino(graph, shape, self.precision, self.threads, self.hint)
        names = [port.get_any_name() for port in compiled.outputs]
        return compiled, compiled.create_infer_request(), names

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x, key = _input(batch)
        _, request, names = self._compiled.get(key)
        return _run(request, names, x)

    @property
    def concurrency(self) -> int:
        """Calls of :meth:`stream_call` worth having in flight: one per stream (thread), and one
        waiting, so that a stream never idles while Python hands over the next frame (video
        end to end 52-54 frames/s against 50-52 without it, default model, 360x480, 2 cores)."""
        return self.threads + 1

    def stream_call(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`__call__` for many frames in flight: safe from :attr:`concurrency` threads at once.

        A separate compilation runs each request on one thread (one stream per thread), so
        the streams keep the cores busy without meeting at a barrier after every layer: more
        frames per second than one request on all threads (the bundled model at 360x480 on
        two cores: 58 against 51 in bf16), each frame taking longer.
        """
        x, key = _input(batch)
        pool, names = self._streamed.get(key)
        request = pool.get()
        try:
            return _run(request, names, x)
        finally:
            pool.put(request)

    def _compile_streams(self, key: Key) -> tuple[queue.Queue, list[str]]:
        graph, shape = self._graph(key)
        compiled = compile_openvino(graph, shape, self.precision, self.threads, streams=self.threads)
        pool: queue.Queue = queue.Queue()
        for _ in range(self.concurrency):
            request = compiled.create_infer_request()
            # The first numpy view of an OpenVINO tensor in a process initialises pybind11's
            # numpy bridge; two threads doing that at once deadlock (seen: 3 runs of 6 hung).
            # Here it happens once, in one thread, before any request runs concurrently.
            request.get_input_tensor(0).data  # noqa: B018
            pool.put(request)
        return pool, [port.get_any_name() for port in compiled.outputs]

    def effective_precision(self, shape: tuple[int, ...] | None = None) -> str:
        """``f32`` or ``bf16``: what OpenVINO really uses on this CPU (int8 layers aside)."""
        if shape is None:
            h, w = self.fixed_size or (64, 64)
            shape = (1, 3, h, w)
        return effective_precision(self._compiled.get((tuple(shape), False))[0])

    def describe(self) -> str:
        return f"openvino {ov.get_version().split('-')[0]} {self.precision}, {self.threads} threads"


def with_image_input(graph: Any, shape: tuple[int, ...], mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    """``graph`` at the static ``(N, 3, H, W)`` ``shape``, taking uint8 RGB ``(N, H, W, 3)`` images
    and normalising them inside: ``(x / 255 - mean) / std``, computed as
    ``(x - 255 mean) / (255 std)`` in float32 (within 2.4e-7 of the float64 table of
    :func:`hydranet.inference.pipeline.normalize`)."""
    from openvino.preprocess import PrePostProcessor

    graph = graph.clone()
    graph.reshape({graph.inputs[0]: list(shape)})
    ppp = PrePostProcessor(graph)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32) \
        .mean([255.0 * float(m) for m in mean]).scale([255.0 * float(s) for s in std])
    return ppp.build()


def _input(batch: np.ndarray) -> tuple[np.ndarray, Key]:
    """The batch ready for a request, and the key of the compiled model that takes it."""
    if is_image_batch(batch):
        x = np.ascontiguousarray(batch)
        return x, (tuple(x.shape), True)
    x = check_batch(batch)
    return x, (tuple(x.shape), False)


def _run(request: Any, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    request.infer({0: x})
    # The request reuses its output buffers: copy before the next call overwrites them.
    return {name: np.array(request.get_output_tensor(i).data, dtype=np.float32, copy=True)
            for i, name in enumerate(names)}
