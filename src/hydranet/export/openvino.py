"""OpenVINO: convert a HydraNet (through ONNX), save / read IR with its configuration, compile."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..model import HydraNet, ModelConfig
from .offline import import_openvino
from .onnx import INPUT_NAME, export_onnx

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
# Keys of the IR's rt_info (stored in the .xml): hydranet -> config / precision / input_size.
RT_SECTION = "hydranet"
# OpenVINO's name for the inference precision hint of each hydranet precision.
_PRECISION_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def precision_hint(precision: str) -> str:
    """The inference precision hint for ``precision``: an INT8 model's layers that stay in
    floating point (resizes, and without VNNI the first convolution and the heads) run bf16
    where the CPU has it, as OpenVINO does by default there (measured: kitti6 192x640 INT8
    13.3 -> 9.9 ms on AMX, when the first convolution was still kept in floating point)."""
    from .cpu import has_bf16

    if precision == "int8" and has_bf16():
        return "bf16"
    return _PRECISION_HINT[precision]


def cpu_threads() -> int:
    """CPU cores this process may use (2 on the project's machines)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def convert_to_openvino(model: HydraNet, size: tuple[int, int] | None = None):
    """An ``openvino.Model`` of ``model`` (fp32), dynamic in batch / height / width unless ``size``."""
    ov = import_openvino()

    with tempfile.TemporaryDirectory(prefix="hydranet-ov-") as tmp:
        onnx_path = export_onnx(model, Path(tmp) / "model.onnx", size=size)
        # convert_model, not Core.read_model: its front-end transformations turn each ONNX
        # Clip into one Clamp (read_model leaves Maximum/Minimum/Broadcast/ShapeOf chains),
        # which lets the CPU plugin run the depthwise convolutions of an INT8 model in int8.
        ov_model = ov.convert_model(str(onnx_path))
    set_rt_metadata(ov_model, model.config, "fp32", size)
    return ov_model


def set_rt_metadata(ov_model, config: ModelConfig, precision: str, size: tuple[int, int] | None) -> None:
    """Store hydranet's configuration and precision in the model's rt_info (saved in the .xml)."""
    ov_model.set_rt_info(config.to_json(), [RT_SECTION, "config"])
    ov_model.set_rt_info(precision, [RT_SECTION, "precision"])
    ov_model.set_rt_info("dynamic" if size is None else f"{size[0]}x{size[1]}", [RT_SECTION, "input_size"])


def read_rt_metadata(ov_model, path: str | Path = "model") -> tuple[ModelConfig, str]:
    """``(config, precision)`` stored by :func:`set_rt_metadata`; a clear error when absent."""
    if not ov_model.has_rt_info([RT_SECTION, "config"]):
        raise CheckpointError(f"{path}: OpenVINO model without hydranet metadata; "
                              "export it with `hydranet export --format openvino`")
    try:
        config = ModelConfig.from_json(ov_model.get_rt_info([RT_SECTION, "config"]).astype(str))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid hydranet configuration in the IR ({exc})") from None
    precision = "fp32"
    if ov_model.has_rt_info([RT_SECTION, "precision"]):
        precision = ov_model.get_rt_info([RT_SECTION, "precision"]).astype(str)
    return config, precision


def save_openvino(ov_model, path: str | Path) -> Path:
    """Write the IR pair ``path`` (.xml) and its .bin, weights uncompressed (fp32), atomically."""
    ov = import_openvino()

    path = Path(path)
    if path.suffix != ".xml":
        path = path.with_suffix(".xml")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.stem}."))
    try:
        # compress_to_fp16 defaults to True, which would cost fp32 its 1e-4 agreement.
        ov.save_model(ov_model, str(tmp / path.name), compress_to_fp16=False)
        os.replace(tmp / path.with_suffix(".bin").name, path.with_suffix(".bin"))
        os.replace(tmp / path.name, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def read_openvino(path: str | Path):
    """``(ov.Model, config, precision)`` from an IR .xml written by hydranet (or a hydranet .onnx)."""
    ov = import_openvino()

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; check the path")
    if path.suffix == ".xml" and not path.with_suffix(".bin").is_file():
        raise CheckpointError(f"{path}: its weights file {path.with_suffix('.bin').name} is missing; "
                              "keep the .xml and .bin together")
    try:
        ov_model = ov.convert_model(str(path)) if path.suffix == ".onnx" else ov.Core().read_model(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: OpenVINO cannot read it ({first[:200]}); "
                              "export it again with `hydranet export`") from None
    if path.suffix == ".onnx":
        from .onnx import META_PRECISION, read_onnx_config, read_onnx_metadata

        config = read_onnx_config(path)
        precision = read_onnx_metadata(path).get(META_PRECISION, "fp32")
        set_rt_metadata(ov_model, config, precision, None)
        return ov_model, config, precision
    config, precision = read_rt_metadata(ov_model, path)
    return ov_model, config, precision


def compile_openvino(ov_model, shape: tuple[int, ...] | None = None, precision: str = "fp32",
                     threads: int | None = None, hint: str = "latency", streams: int | None = None) -> Any:
    """Compile for the CPU at a static input ``shape`` (fastest) or as is when ``shape`` is None.

    ``precision``: ``fp32``; ``bf16`` asks for bf16 inference (only where the CPU has
    AVX512_BF16 or AMX: elsewhere OpenVINO runs f32, see :func:`effective_precision`);
    ``int8`` expects a model quantized by :func:`hydranet.export.quantize.quantize_openvino`.
    ``streams``: that many requests run at once, the ``threads`` shared among them
    (throughput mode).
    """
    ov = import_openvino()

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if shape is not None:
        ov_model = ov_model.clone()
        ov_model.reshape({INPUT_NAME: list(shape)} if _has_input(ov_model, INPUT_NAME) else list(shape))
    config = {
        "INFERENCE_PRECISION_HINT": precision_hint(precision),
        "INFERENCE_NUM_THREADS": int(threads or cpu_threads()),
        "PERFORMANCE_HINT": "THROUGHPUT" if hint == "throughput" or streams else "LATENCY",
    }
    if streams:
        config["NUM_STREAMS"] = int(streams)
    return ov.Core().compile_model(ov_model, "CPU", config)


def _has_input(ov_model, name: str) -> bool:
    return any(name in port.get_names() for port in ov_model.inputs)


def effective_precision(compiled) -> str:
    """What a compiled model really computes in: ``f32`` or ``bf16`` (int8 layers aside)."""
    value = compiled.get_property("INFERENCE_PRECISION_HINT")
    name = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
    return {"float32": "f32", "bfloat16": "bf16"}.get(name, name)


def export_openvino(model: HydraNet, path: str | Path, precision: str = "fp32",
                    size: tuple[int, int] | None = None, calibration: list | None = None) -> Path:
    """Write ``model`` as OpenVINO IR (.xml + .bin) carrying its configuration and precision.

    ``int8`` quantizes with NNCF on ``calibration`` (a list of normalised ``(1, 3, H, W)``
    float32 arrays); ``bf16`` stores fp32 weights and the bf16 inference hint.
    """
    ov_model = convert_to_openvino(model, size)
    if precision == "int8":
        from .quantize import quantize_openvino

        if not calibration:
            raise ValueError("int8 export needs calibration batches")
        ov_model = quantize_openvino(ov_model, calibration)
    elif precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    set_rt_metadata(ov_model, model.config, precision, size)
    return save_openvino(ov_model, path)
