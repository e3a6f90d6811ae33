"""ONNX Runtime backend (CPU): fp32, or INT8 static QDQ quantized on calibration images."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ...errors import CheckpointError
from ...export.calibration import CalibrationSource
from ...export.onnx import (
    META_INPUT_SIZE,
    META_PRECISION,
    export_onnx,
    parse_size,
    read_onnx_config,
    read_onnx_metadata,
)
from ...export.openvino import cpu_threads
from ...export.quantize import quantize_onnx
from ...model import HydraNet
from .base import CompiledByShape, ExportedBackend, GraphsBySize, SetupClock, Size, check_batch

PRECISIONS = ("fp32", "int8")
# Sessions kept per input shape (each is specialised to it, ~5% faster than a dynamic one).
_MAX_SESSIONS = 4


class OnnxRuntimeBackend(ExportedBackend):
    """A HydraNet in ONNX Runtime's CPU execution provider.

    ``model`` is a loaded :class:`HydraNet` (exported to ONNX here, with dynamic height and
    width, or once per input size for networks whose graph depends on it) or the path of an
    ``.onnx`` file written by ``hydranet export`` (its metadata carries the configuration).
    ``precision="int8"`` quantizes (static QDQ, u8 activations / s8 per-channel weights)
    on ``calibration``: a folder of images, a list of normalised ``(1, 3, H, W)`` arrays,
    or None for generated street scenes at ``calibration_sizes``. ``int8_weights``: ``s8``,
    ``u8`` or ``auto`` (s8 where the CPU has VNNI, u8 elsewhere, where s8 saturates).
    """

    name = "onnxruntime"

    def __init__(self, model: HydraNet | str | Path, precision: str = "fp32", threads: int | None = None,
                 calibration: str | Path | list[np.ndarray] | None = None,
                 calibration_sizes: list[Size] | None = None, calibration_count: int = 32,
                 int8_weights: str = "auto") -> None:
        if precision not in PRECISIONS:
            raise CheckpointError(f"onnxruntime backend: precision {precision!r} is not supported; "
                                  f"choose from {', '.join(PRECISIONS)}")
        self.threads = int(threads or cpu_threads())
        self._tmp = tempfile.TemporaryDirectory(prefix="hydranet-ort-")
        self._model: HydraNet | None = None
        fixed_size: Size | None = None
        source = "model"
        if isinstance(model, HydraNet):
            self.config = model.config
            self._model = model
            file_precision = "fp32"
        else:
            path = Path(model)
            self.config = read_onnx_config(path)
            meta = read_onnx_metadata(path)
            file_precision = meta.get(META_PRECISION, "fp32")
            fixed_size = parse_size(meta.get(META_INPUT_SIZE))
            if file_precision == "int8" and precision == "fp32":
                precision = "int8"  # the file decides: an INT8 file cannot run in fp32
            source = str(path)
        self.precision = precision
        self.int8_weights = int8_weights
        self._quantize_files = precision == "int8" and file_precision != "int8"
        self._calibration = CalibrationSource(self.config, calibration, calibration_count,
                                              [fixed_size] if fixed_size else calibration_sizes)
        # ONNX files by input (H, W).
        self.setup = SetupClock()
        self._graphs = GraphsBySize(self._prepare, source, fixed_size)
        with self.setup.timing():  # exporting and quantizing count as set-up
            if self._model is not None:
                self._graphs.prepare_dynamic()
            else:
                self._graphs.add(fixed_size, self._quantize(path, fixed_size) if self._quantize_files else path)
        self._sessions = CompiledByShape(self._open_session, _MAX_SESSIONS, self.setup)

    def _prepare(self, size: Size | None) -> Path:
        tag = "dynamic" if size is None else f"{size[0]}x{size[1]}"
        path = export_onnx(self._model, Path(self._tmp.name) / f"model-{tag}.onnx", size=size)
        return self._quantize(path, size) if self._quantize_files else path

    def _quantize(self, path: Path, size: Size | None) -> Path:
        return quantize_onnx(path, path.with_suffix(".int8.onnx"), self._calibration.batches(size),
                             self.int8_weights)

    def _open_session(self, shape: tuple[int, ...]) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        for dim, value in zip(("batch", "height", "width"), (shape[0], shape[2], shape[3])):
            options.add_free_dimension_override_by_name(dim, int(value))
        path = self._graphs.get((shape[2], shape[3]))
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = check_batch(batch)
        session = self._sessions.get(tuple(x.shape))
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(names, {session.get_inputs()[0].name: x})
        return {name: np.asarray(out, dtype=np.float32) for name, out in zip(names, outputs)}

    def describe(self) -> str:
        return f"onnxruntime {ort.__version__} {self.precision}, {self.threads} threads"
