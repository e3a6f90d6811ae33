"""Export a HydraNet to ONNX, with its configuration in the file's metadata."""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import CheckpointError
from ..model import HydraNet, ModelConfig
from ..sizes import parse_size  # noqa: F401 (re-exported: hydranet.export.parse_size)
from .offline import import_openvino

# onnx metadata_props keys; any ONNX consumer can read them, hydranet rebuilds the config from them.
META_FORMAT = "hydranet.format"
META_CONFIG = "hydranet.config"
META_PRECISION = "hydranet.precision"
META_INPUT_SIZE = "hydranet.input_size"
FORMAT_NAME = "hydranet-onnx-1"

OPSET = 17
INPUT_NAME = "input"
# Size of the example input traced for a dynamic export: small, since tracing runs the
# model once and the dynamic graph does not depend on it (checked by ``_check_dynamic``).
EXAMPLE_SIZE: tuple[int, int] = (64, 96)


class SlicedConv(nn.Module):
    """A convolution computed with extra all-zero filters, then cut back to its own channels.

    CPU kernels work on blocks of 8 (AVX2) or 16 output channels; a 1-channel depth head
    or a 6-class head wastes most of each block in slow remainder code. Padding to the
    block and slicing is exactly equal and measured faster in OpenVINO (INT8 at 192x640:
    23.7 -> 21.3 ms; fp32 38.5 -> 37.2 ms; ONNX Runtime unchanged).
    """

    def __init__(self, conv: nn.Conv2d, multiple: int = 8) -> None:
        super().__init__()
        self.channels = conv.out_channels
        padded = -(-conv.out_channels // multiple) * multiple
        self.conv = nn.Conv2d(conv.in_channels, padded, conv.kernel_size, stride=conv.stride,
                              padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                              bias=conv.bias is not None)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[: self.channels] = conv.weight
            if conv.bias is not None:
                self.conv.bias.zero_()
                self.conv.bias[: self.channels] = conv.bias

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)[:, : self.channels]


def pad_head_channels(model: HydraNet, multiple: int = 8) -> HydraNet:
    """A copy of ``model`` whose heads' output convolutions are :class:`SlicedConv` (same outputs)."""
    from ..model.heads import HEAD_ATTRIBUTES

    model = copy.deepcopy(model).eval()
    for task in model.config.tasks:
        name = HEAD_ATTRIBUTES[task][1]
        conv = getattr(model, name, None)
        if isinstance(conv, nn.Conv2d) and conv.out_channels % multiple:
            setattr(model, name, SlicedConv(conv, multiple))
    return model


class OutputsAsTuple(nn.Module):
    """The model with a tuple output in task order, which exporters need (they do not trace dicts).

    The heads are padded to whole channel blocks (:func:`pad_head_channels`) on a copy.
    """

    def __init__(self, model: HydraNet) -> None:
        super().__init__()
        self.model = pad_head_channels(model)
        self.tasks = tuple(model.config.tasks)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        outputs = self.model(x)
        return tuple(outputs[t] for t in self.tasks)


def export_onnx(model: HydraNet, path: str | Path, size: tuple[int, int] | None = None,
                batch: int | None = None, precision: str = "fp32") -> Path:
    """Write ``model`` as ONNX (opset 17) to ``path``, atomically.

    ``size=None`` leaves height and width dynamic (any input size; checked at an odd size,
    :class:`SizeSpecificModelError` if the graph is only valid at the traced size),
    otherwise they are fixed; ``batch=None`` leaves the batch dynamic. Outputs are named after the tasks
    (``segmentation``, ``depth``[, ``normals``]); the model configuration goes into the
    metadata (``hydranet.config``), so :func:`read_onnx_config` rebuilds it.
    """
    if size is None and pads_by_input_size(model):
        raise SizeSpecificModelError(_SIZE_SPECIFIC.format(encoder=model.config.encoder))
    import onnx  # a second to import: not before it is needed

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    wrapper = OutputsAsTuple(model).eval()
    h, w = size or EXAMPLE_SIZE
    example = torch.zeros(batch or 1, 3, h, w)
    dynamic_axes: dict[str, dict[int, str]] = {}
    input_axes: dict[int, str] = {}
    if batch is None:
        input_axes[0] = "batch"
    if size is None:
        input_axes.update({2: "height", 3: "width"})
    if input_axes:
        dynamic_axes[INPUT_NAME] = input_axes
        for task in wrapper.tasks:
            dynamic_axes[task] = {i: f"{task}_{n}" if n != "batch" else "batch" for i, n in input_axes.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _torch_export(wrapper, example, tmp, dynamic_axes)
        if size is None:
            _check_dynamic(model, tmp)
        proto = onnx.load(tmp)
        set_metadata(proto, model.config, precision, size)
        onnx.save(proto, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _torch_export(wrapper: OutputsAsTuple, example: Tensor, path: str,
                  dynamic_axes: dict[str, dict[int, str]]) -> None:
    # The TorchScript exporter (dynamo=False) takes ~1 s here against ~28 s for the
    # torch.export-based one, and both give the same graph speed and error (~1e-5) in
    # ONNX Runtime and OpenVINO; fall back to dynamo if a future torch drops it.
    kwargs = dict(input_names=[INPUT_NAME], output_names=list(wrapper.tasks), opset_version=OPSET)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(wrapper, (example,), path, dynamo=False, dynamic_axes=dynamic_axes or None,
                              do_constant_folding=True, **kwargs)
            return
        except (TypeError, RuntimeError, NotImplementedError):
            pass
        shapes = None
        if dynamic_axes.get(INPUT_NAME):
            shapes = {"x": {i: torch.export.Dim.AUTO for i in dynamic_axes[INPUT_NAME]}}
        torch.onnx.export(wrapper, (example,), path, dynamo=True, dynamic_shapes=shapes, **kwargs)


class SizeSpecificModelError(ValueError):
    """The traced graph is only valid at the example size (the model computes with Python ints)."""


_SIZE_SPECIFIC = ("the {encoder} network's graph depends on the input size (padding computed "
                  "from the shape), so it cannot be exported with a dynamic size")


def pads_by_input_size(model: nn.Module) -> bool:
    """True when a layer computes its padding from the input's size (EfficientNet's TensorFlow
    ``SAME``): known from the layers, without tracing the network."""
    return any(getattr(m, "pads_by_input_size", False) for m in model.modules())


# An input whose stride-2 stages see odd sizes, where shape-dependent padding differs from 192x640.
_PROBE_SHAPE = (1, 3, 33, 45)


def _check_dynamic(model: HydraNet, path: str) -> None:
    """Run the dynamic graph at an odd size and compare with PyTorch.

    Tracing turns sizes a model reads as Python integers into constants: EfficientNet's
    TensorFlow ``SAME`` padding, computed from ``x.shape``, would then be wrong at other
    sizes. Such models must be exported at a fixed size. Skipped when no runtime is installed.
    """
    x = np.random.default_rng(0).standard_normal(_PROBE_SHAPE).astype(np.float32)
    outputs = _run_any_runtime(path, x)
    if outputs is None:
        return
    with torch.no_grad():
        expected = model(torch.from_numpy(x))
    for task, got in zip(model.config.tasks, outputs):
        ref = expected[task].numpy()
        if got.shape != ref.shape or not np.allclose(got, ref, atol=1e-3, rtol=1e-3):
            raise SizeSpecificModelError(_SIZE_SPECIFIC.format(encoder=model.config.encoder))


def _run_any_runtime(path: str, x: np.ndarray) -> list[np.ndarray] | None:
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.run(None, {INPUT_NAME: x})
    try:
        ov = import_openvino()
    except ImportError:
        return None
    # f32 explicitly: on CPUs with AMX / AVX512_BF16 the plugin's default is bf16, whose
    # errors would pass a dynamic graph off as size-specific.
    compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(x)
    return [result[port] for port in compiled.outputs]


def set_metadata(proto, config: ModelConfig, precision: str, size: tuple[int, int] | None) -> None:
    """Write (or replace) hydranet's metadata entries in an ``onnx.ModelProto``."""
    entries = {
        META_FORMAT: FORMAT_NAME,
        META_CONFIG: config.to_json(),
        META_PRECISION: precision,
        META_INPUT_SIZE: "dynamic" if size is None else f"{size[0]}x{size[1]}",
    }
    replace_metadata(proto, entries)


def replace_metadata(proto, entries: dict[str, str]) -> None:
    """Set ``entries`` in an ``onnx.ModelProto``'s metadata, keeping every other entry."""
    keep = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """hydranet's metadata of an exported ONNX file (without loading the weights)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; check the path")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for corrupt files
        raise CheckpointError(f"{path}: not a readable ONNX file ({type(exc).__name__}); "
                              "export it again with `hydranet export`") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get(META_FORMAT) != FORMAT_NAME or META_CONFIG not in meta:
        raise CheckpointError(f"{path}: ONNX file without hydranet metadata; "
                              "export it with `hydranet export --format onnx`")
    return meta


def read_onnx_config(path: str | Path) -> ModelConfig:
    """The model configuration stored in an ONNX file written by :func:`export_onnx`."""
    meta = read_onnx_metadata(path)
    try:
        return ModelConfig.from_json(meta[META_CONFIG])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid hydranet configuration in ONNX metadata ({exc})") from None
