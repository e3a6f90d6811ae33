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

from .offline import no_telemetry
from .onnx import INPUT_NAME, META_PRECISION, read_onnx_metadata


def quantize_openvino(ov_model, batches: Sequence[np.ndarray]):
    """NNCF post-training INT8 quantization of an ``openvino.Model`` on normalised input batches.

    Every convolution goes to INT8, the first one and the heads' included: NNCF's performance
    preset (symmetric activations), weights symmetric per channel, fast bias correction. What
    depends on the CPU is how it sums 8-bit products:

    - with VNNI (or AMX) the sums are exact 32-bit, and weights keep their full 8 bits.
      Measured on the bundled model (``benchmarks/default_engine_accuracy.py``): -0.39 mIoU
      on CamVid val, depth abs rel on the real frames -4.2 % (metric) and -3.2 %
      (median-scaled).
    - without VNNI, x86 kernels (VPMADDUBSW) add pairs of u8 x s8 products in saturating
      16-bit arithmetic, so every layer's weights get 7-bit ranges (NNCF's overflow fix),
      which keeps a pair's sum in range. Measured on the bundled model with OpenVINO's kernels
      limited to AVX2 (``benchmarks/as_avx2.py``, which reproduces the saturation): -0.30
      mIoU, depth abs rel -3.3 % / -4.1 %; kitti6 at 192x640 21.2 ms against 23.6 for the
      earlier settings (mixed preset, first and output convolutions in fp32) and 23.1 for
      the plain INT8 export.
    """
    no_telemetry()  # before NNCF is imported: it brings in OpenVINO
    import nncf

    from .cpu import has_vnni

    if not batches:
        raise ValueError("INT8 quantization needs at least one calibration batch")
    overflow_fix = nncf.OverflowFix.DISABLE if has_vnni() else nncf.OverflowFix.ENABLE
    settings = {"preset": nncf.QuantizationPreset.PERFORMANCE,
                "advanced_parameters": nncf.AdvancedQuantizationParameters(overflow_fix=overflow_fix)}
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)  # its INFO lines would drown the command's output
    try:
        # NNCF draws its progress bars on stdout; keep stdout for results (tables, JSON).
        with contextlib.redirect_stdout(sys.stderr):
            return nncf.quantize(ov_model, nncf.Dataset(list(batches)), subset_size=len(batches),
                                 fast_bias_correction=True, **settings)
    finally:
        nncf_logger.setLevel(level)


def onnx_kept_fp32(proto) -> list[str]:
    """ONNX nodes INT8 keeps in fp32: the first convolution and every head.

    The first convolution is the one the input reaches (through padding for EfficientNet);
    a head is the chain of nodes from a model output back through its two convolutions.
    Excluding only the heads' last convolution is not enough in QDQ form: its input
    would still be quantized by the node before it.
    """
    consumers: dict[str, list] = {}
    producer = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
        for name in node.output:
            producer[name] = node
    initializers = {i.name for i in proto.graph.initializer}
    keep: list[str] = []
    for graph_input in proto.graph.input:
        frontier = list(consumers.get(graph_input.name, []))
        while frontier:
            node = frontier.pop()
            if node.op_type == "Conv":
                keep.append(node.name)
            elif node.op_type in ("Pad", "Identity", "Cast"):
                keep.append(node.name)  # else its output would be quantized for the convolution
                frontier.extend(c for o in node.output for c in consumers.get(o, []))
    for graph_output in proto.graph.output:
        # A head is two convolutions (depthwise 1x1, ReLU6, 3x3) after the shared feature.
        node, convs = producer.get(graph_output.name), 0
        while node is not None and node.name not in keep and convs < 2:
            keep.append(node.name)
            convs += node.op_type == "Conv"
            data = [i for i in node.input if i and i not in initializers and i in producer
                    and producer[i].op_type != "Constant"]
            if len(data) != 1 or len(consumers.get(data[0], [])) != 1:
                break  # reached a join or a tensor other nodes share
            node = producer[data[0]]
    return keep


def onnx_depthwise_weights(proto) -> list[str]:
    """Weight initializers of the depthwise convolutions (one input channel per group)."""
    shapes = {i.name: list(i.dims) for i in proto.graph.initializer}
    names = []
    for node in proto.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in shapes:
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        dims = shapes[node.input[1]]
        if group > 1 and len(dims) == 4 and dims[0] == group and dims[1] == 1:
            names.append(node.input[1])
    return names


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of batches."""

    def __init__(self, batches: Sequence[np.ndarray]) -> None:
        self._items = iter([{INPUT_NAME: np.ascontiguousarray(b, np.float32)} for b in batches])

    def get_next(self):
        return next(self._items, None)


def onnx_weight_type(weights: str = "auto") -> str:
    """``s8`` or ``u8`` for INT8 weights; ``auto`` = ``s8`` on CPUs with VNNI, else ``u8``.

    Measured on a CamVid model on an AVX2 CPU without VNNI: s8 weights lost 4.8 mIoU
    points to saturation, u8 weights 0.1 (and ran ~20% slower than s8).
    """
    if weights == "auto":
        from .cpu import has_vnni

        return "s8" if has_vnni() else "u8"
    if weights not in ("s8", "u8"):
        raise ValueError(f"INT8 weights {weights!r}: choose s8, u8 or auto")
    return weights


def quantize_onnx(fp32_path: str | Path, out_path: str | Path, batches: Sequence[np.ndarray],
                  weights: str = "auto") -> Path:
    """Static QDQ INT8 quantization of a hydranet ONNX file: u8 activations, per-channel weights.

    Weights are s8 (symmetric) on CPUs with VNNI and u8 (asymmetric) elsewhere, where s8
    saturates (:func:`onnx_weight_type`); depthwise convolutions keep s8 on every CPU. The calibration uses min/max ranges over
    ``batches``; the first convolution and the heads stay fp32 (:func:`onnx_kept_fp32`); the metadata (configuration)
    is carried over, with precision ``int8``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .onnx import META_CONFIG, META_FORMAT, META_INPUT_SIZE, replace_metadata

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
        signed = onnx_weight_type(weights) == "s8"
        graph = onnx.load(str(prepared), load_external_data=False)
        # Depthwise convolutions keep s8 weights even where dense ones take u8: their int32
        # kernels do not saturate, and onnxruntime's u8 depthwise path is so slow that the
        # bundled model ran 6x slower than in fp32 (Zen 3, 360x480: 667 against 104 ms).
        overrides = {} if signed else {
            name: [{"quant_type": QuantType.QInt8, "symmetric": True, "axis": 0}]
            for name in onnx_depthwise_weights(graph)}
        quantize_static(
            str(prepared), str(quantized), _Reader(batches),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8 if signed else QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=onnx_kept_fp32(graph),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": signed,
                           "TensorQuantOverrides": overrides},
        )
        proto = onnx.load(str(quantized))
        entries = {k: meta[k] for k in (META_FORMAT, META_CONFIG, META_INPUT_SIZE) if k in meta}
        entries[META_PRECISION] = "int8"
        entries["hydranet.int8_weights"] = "s8" if signed else "u8"
        replace_metadata(proto, entries)
        onnx.save(proto, str(quantized))
        os.replace(quantized, out_path)
    return out_path
