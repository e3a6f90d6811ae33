"""INT8 post-training quantization: NNCF for OpenVINO, static QDQ for ONNX Runtime."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .onnx import INPUT_NAME, META_PRECISION, read_onnx_metadata


def quantize_openvino(ov_model, batches: Sequence[np.ndarray]):
    """NNCF post-training INT8 quantization of an ``openvino.Model`` on normalised input batches.

    Activations and weights both go to 8 bits (symmetric weights per channel); the
    ``MIXED`` preset keeps activations asymmetric, which the residual sums and the
    signed head outputs of this network need. Fast bias correction is on.
    """
    import nncf

    if not batches:
        raise ValueError("INT8 quantization needs at least one calibration batch")
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)  # its INFO lines would drown the command's output
    try:
        # NNCF draws its progress bars on stdout; keep stdout for results (tables, JSON).
        with contextlib.redirect_stdout(sys.stderr):
            return nncf.quantize(ov_model, nncf.Dataset(list(batches)), subset_size=len(batches),
                                 preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=True)
    finally:
        nncf_logger.setLevel(level)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of batches."""

    def __init__(self, batches: Sequence[np.ndarray]) -> None:
        self._items = iter([{INPUT_NAME: np.ascontiguousarray(b, np.float32)} for b in batches])

    def get_next(self):
        return next(self._items, None)


def quantize_onnx(fp32_path: str | Path, out_path: str | Path, batches: Sequence[np.ndarray]) -> Path:
    """Static QDQ INT8 quantization of a hydranet ONNX file (u8 activations, s8 per-channel weights).

    The calibration uses min/max ranges over ``batches``; the metadata (configuration)
    is carried over, with precision ``int8``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .onnx import META_CONFIG, META_FORMAT, META_INPUT_SIZE

    if not batches:
        raise ValueError("INT8 quantization needs at least one calibration batch")
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    meta = read_onnx_metadata(fp32_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hydranet-qdq-", dir=out_path.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quantized = Path(tmp) / "quantized.onnx"
        # Shape inference and graph optimisation first, as onnxruntime recommends for QDQ.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(quantized), _Reader(batches),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        proto = onnx.load(str(quantized))
        entries = {k: meta[k] for k in (META_FORMAT, META_CONFIG, META_INPUT_SIZE) if k in meta}
        entries[META_PRECISION] = "int8"
        keep = [p for p in proto.metadata_props if p.key not in entries]
        del proto.metadata_props[:]
        proto.metadata_props.extend(keep)
        for key, value in entries.items():
            prop = proto.metadata_props.add()
            prop.key, prop.value = key, value
        onnx.save(proto, str(quantized))
        os.replace(quantized, out_path)
    return out_path
