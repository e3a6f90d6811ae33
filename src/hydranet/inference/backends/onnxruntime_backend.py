"""ONNX Runtime backend (CPU): fp32, or INT8 static QDQ quantized on calibration images."""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ...errors import CheckpointError, InputError
from ...export.calibration import CalibrationSource
from ...export.onnx import (
    META_INPUT_SIZE,
    META_PRECISION,
    SizeSpecificModelError,
    export_onnx,
    parse_size,
    read_onnx_config,
    read_onnx_metadata,
)
from ...export.openvino import cpu_threads
from ...export.quantize import quantize_onnx
from ...model import HydraNet

PRECISIONS = ("fp32", "int8")
# Sessions kept per input shape (each is specialised to it, ~5% faster than a dynamic one).
_MAX_SESSIONS = 4

Size = tuple[int, int]


class OnnxRuntimeBackend:
    """A HydraNet in ONNX Runtime's CPU execution provider.

    ``model`` is a loaded :class:`HydraNet` (exported to ONNX here, with dynamic height and
    width, or once per input size for networks whose graph depends on it) or the path of an
    ``.onnx`` file written by ``hydranet export`` (its metadata carries the configuration).
    ``precision="int8"`` quantizes (static QDQ, u8 activations / s8 per-channel weights)
    on ``calibration``: a folder of images, a list of normalised ``(1, 3, H, W)`` arrays,
    or None for generated street scenes of ``calibration_size``. ``int8_weights``: ``s8``,
    ``u8`` or ``auto`` (s8 where the CPU has VNNI, u8 elsewhere, where s8 saturates).
    """

    name = "onnxruntime"

    def __init__(self, model: HydraNet | str | Path, precision: str = "fp32", threads: int | None = None,
                 calibration: str | Path | list[np.ndarray] | None = None,
                 calibration_size: Size = (192, 640), calibration_count: int = 32,
                 int8_weights: str = "auto") -> None:
        if precision not in PRECISIONS:
            raise CheckpointError(f"onnxruntime backend: precision {precision!r} is not supported; "
                                  f"choose from {', '.join(PRECISIONS)}")
        self.threads = int(threads or cpu_threads())
        self._tmp = tempfile.TemporaryDirectory(prefix="hydranet-ort-")
        self._model: HydraNet | None = None
        self.fixed_size: Size | None = None
        # Graph files by input (H, W); the key None holds a graph valid for every size.
        self._files: dict[Size | None, Path] = {}
        self.source = "model"
        if isinstance(model, HydraNet):
            self.config = model.config
            self._model = model
            file_precision = "fp32"
        else:
            path = Path(model)
            self.config = read_onnx_config(path)
            meta = read_onnx_metadata(path)
            file_precision = meta.get(META_PRECISION, "fp32")
            self.fixed_size = parse_size(meta.get(META_INPUT_SIZE))
            if file_precision == "int8" and precision == "fp32":
                precision = "int8"  # the file decides: an INT8 file cannot run in fp32
            self._files[self.fixed_size] = path
            self.source = str(path)
        self.precision = precision
        self.int8_weights = int8_weights
        self._quantize_files = precision == "int8" and file_precision != "int8"
        self._calibration = CalibrationSource(self.config, calibration, calibration_count,
                                              self.fixed_size or calibration_size)
        if self._model is not None:
            try:
                self._files[None] = self._prepare(None)
            except SizeSpecificModelError:
                pass  # exported per input size on first use
        elif self._quantize_files:
            self._files[self.fixed_size] = self._quantize(self._files[self.fixed_size], self.fixed_size)
        self._sessions: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def _prepare(self, size: Size | None) -> Path:
        tag = "dynamic" if size is None else f"{size[0]}x{size[1]}"
        path = export_onnx(self._model, Path(self._tmp.name) / f"model-{tag}.onnx", size=size)
        return self._quantize(path, size) if self._quantize_files else path

    def _quantize(self, path: Path, size: Size | None) -> Path:
        return quantize_onnx(path, path.with_suffix(".int8.onnx"), self._calibration.batches(size),
                             self.int8_weights)

    def _file(self, size: Size) -> Path:
        if None in self._files:
            return self._files[None]
        if self.fixed_size is not None and size != self.fixed_size:
            h, w = self.fixed_size
            raise InputError(f"{self.source}: exported for {h}x{w} inputs, got {size[0]}x{size[1]}; "
                             f"resize the input (Predictor size=({h}, {w}) / predict --size {h}x{w}) "
                             "or export with --size dynamic")
        if size not in self._files:
            self._files[size] = self._prepare(size)
        return self._files[size]

    def _session(self, shape: tuple[int, ...]) -> Any:
        session = self._sessions.get(shape)
        if session is None:
            path = self._file((shape[2], shape[3]))
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            for dim, value in zip(("batch", "height", "width"), (shape[0], shape[2], shape[3])):
                options.add_free_dimension_override_by_name(dim, int(value))
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self._sessions[shape] = session
            if len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(shape)
        return session

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"expected a (N, 3, H, W) batch, got shape {x.shape}")
        session = self._session(tuple(x.shape))
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(names, {session.get_inputs()[0].name: x})
        return {name: np.asarray(out, dtype=np.float32) for name, out in zip(names, outputs)}

    def describe(self) -> str:
        return f"onnxruntime {ort.__version__} {self.precision}, {self.threads} threads"
