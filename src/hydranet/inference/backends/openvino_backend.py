"""OpenVINO backend (CPU): fp32, bf16 (where the CPU supports it) or INT8 quantized by NNCF."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from ...errors import CheckpointError
from ...export.calibration import calibration_batches
from ...export.openvino import (
    PRECISIONS,
    compile_openvino,
    convert_to_openvino,
    cpu_threads,
    effective_precision,
    read_openvino,
)
from ...export.quantize import quantize_openvino
from ...model import HydraNet

# Compiled models kept per input shape: a static shape compiles in ~0.2 s and runs
# faster than the dynamic model.
_MAX_COMPILED = 4


class OpenVINOBackend:
    """A HydraNet compiled by OpenVINO for the CPU.

    ``model`` is a loaded :class:`HydraNet` (converted here through ONNX) or the path of
    an IR ``.xml`` (or ``.onnx``) written by ``hydranet export``. ``precision``: ``fp32``,
    ``bf16`` (the inference precision hint; CPUs without AVX512_BF16 / AMX run f32, see
    :attr:`effective_precision`) or ``int8`` (NNCF post-training quantization on
    ``calibration``: a folder, a list of normalised arrays, or None for generated scenes).
    ``hint="throughput"`` uses OpenVINO's multi-stream mode for large batches.
    """

    name = "openvino"

    def __init__(self, model: HydraNet | str | Path, precision: str = "fp32", threads: int | None = None,
                 calibration: str | Path | list[np.ndarray] | None = None,
                 calibration_size: tuple[int, int] = (192, 640), calibration_count: int = 32,
                 hint: str = "latency") -> None:
        if precision not in PRECISIONS:
            raise CheckpointError(f"openvino backend: precision {precision!r} is not supported; "
                                  f"choose from {', '.join(PRECISIONS)}")
        if isinstance(model, HydraNet):
            self.config = model.config
            ov_model, file_precision = convert_to_openvino(model), "fp32"
        else:
            ov_model, self.config, file_precision = read_openvino(model)
        if file_precision == "int8":
            precision = "int8"  # a quantized IR is int8 whatever was asked
        elif file_precision == "bf16" and precision == "fp32":
            precision = "bf16"  # the exported hint
        if precision == "int8" and file_precision != "int8":
            if not isinstance(calibration, list):
                calibration = calibration_batches(self.config, calibration, calibration_count, calibration_size)
            ov_model = quantize_openvino(ov_model, calibration)
        self.precision = precision
        self.threads = int(threads or cpu_threads())
        self.hint = hint
        self.ov_model = ov_model
        self._compiled: OrderedDict[tuple[int, ...], tuple[Any, Any, list[str]]] = OrderedDict()

    def _get(self, shape: tuple[int, ...]) -> tuple[Any, Any, list[str]]:
        entry = self._compiled.get(shape)
        if entry is None:
            compiled = compile_openvino(self.ov_model, shape, self.precision, self.threads, self.hint)
            names = [port.get_any_name() for port in compiled.outputs]
            entry = (compiled, compiled.create_infer_request(), names)
            self._compiled[shape] = entry
            if len(self._compiled) > _MAX_COMPILED:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(shape)
        return entry

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, H, W) batch, got shape {x.shape}")
        _, request, names = self._get(tuple(x.shape))
        request.infer({0: x})
        # The request reuses its output buffers: copy before the next call overwrites them.
        return {name: np.array(request.get_output_tensor(i).data, dtype=np.float32, copy=True)
                for i, name in enumerate(names)}

    def effective_precision(self, shape: tuple[int, ...] = (1, 3, 64, 64)) -> str:
        """``f32`` or ``bf16``: what OpenVINO really uses on this CPU (int8 layers aside)."""
        return effective_precision(self._get(tuple(shape))[0])

    def describe(self) -> str:
        return f"openvino {ov.get_version().split('-')[0]} {self.precision}, {self.threads} threads"
