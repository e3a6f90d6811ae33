"""ONNX Runtime backend (CPU): fp32, or INT8 static QDQ quantized on calibration images."""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ...errors import CheckpointError
from ...export.calibration import calibration_batches
from ...export.onnx import META_PRECISION, export_onnx, read_onnx_config, read_onnx_metadata
from ...export.openvino import cpu_threads
from ...export.quantize import quantize_onnx
from ...model import HydraNet

PRECISIONS = ("fp32", "int8")
# Sessions kept per input shape (each is specialised to it, ~5% faster than a dynamic one).
_MAX_SESSIONS = 4


class OnnxRuntimeBackend:
    """A HydraNet in ONNX Runtime's CPU execution provider.

    ``model`` is a loaded :class:`HydraNet` (exported to ONNX here) or the path of an
    ``.onnx`` file written by ``hydranet export`` (its metadata carries the configuration).
    ``precision="int8"`` quantizes (static QDQ, u8 activations / s8 per-channel weights)
    on ``calibration``: a folder of images, a list of normalised ``(1, 3, H, W)`` arrays,
    or None for generated street scenes of ``calibration_size``.
    """

    name = "onnxruntime"

    def __init__(self, model: HydraNet | str | Path, precision: str = "fp32", threads: int | None = None,
                 calibration: str | Path | list[np.ndarray] | None = None,
                 calibration_size: tuple[int, int] = (192, 640), calibration_count: int = 32) -> None:
        if precision not in PRECISIONS:
            raise CheckpointError(f"onnxruntime backend: precision {precision!r} is not supported; "
                                  f"choose from {', '.join(PRECISIONS)}")
        self.threads = int(threads or cpu_threads())
        self._tmp = tempfile.TemporaryDirectory(prefix="hydranet-ort-")
        if isinstance(model, HydraNet):
            self.config = model.config
            path = export_onnx(model, Path(self._tmp.name) / "model.onnx")
            file_precision = "fp32"
        else:
            path = Path(model)
            self.config = read_onnx_config(path)
            file_precision = read_onnx_metadata(path).get(META_PRECISION, "fp32")
            if file_precision == "int8" and precision == "fp32":
                precision = "int8"  # the file decides: an INT8 file cannot run in fp32
        if precision == "int8" and file_precision != "int8":
            if not isinstance(calibration, list):
                calibration = calibration_batches(self.config, calibration, calibration_count, calibration_size)
            path = quantize_onnx(path, Path(self._tmp.name) / "model.int8.onnx", calibration)
        self.precision = precision
        self.path = path
        self._sessions: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def _session(self, shape: tuple[int, ...]) -> Any:
        session = self._sessions.get(shape)
        if session is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            for dim, value in zip(("batch", "height", "width"), (shape[0], shape[2], shape[3])):
                options.add_free_dimension_override_by_name(dim, int(value))
            session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self._sessions[shape] = session
            if len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(shape)
        return session

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, H, W) batch, got shape {x.shape}")
        session = self._session(tuple(x.shape))
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(names, {session.get_inputs()[0].name: x})
        return {name: np.asarray(out, dtype=np.float32) for name, out in zip(names, outputs)}

    def describe(self) -> str:
        return f"onnxruntime {ort.__version__} {self.precision}, {self.threads} threads"
