"""A disk cache of converted (and quantized) engine graphs, so a second run pays nothing.

Converting a network through ONNX takes a few seconds and INT8 quantization with NNCF
tens of seconds per input size; both depend only on the weights, the input size, the
precision, the calibration inputs, the engine's version, hydranet's recipe for building the
graph and the CPU (INT8 ranges differ with and without VNNI). The key holds all of them, so any change makes a new entry and
a stale one is never read. ``$HYDRANET_HOME/engines``, else ``$XDG_CACHE_HOME/hydranet/engines``;
``HYDRANET_ENGINE_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..model import HydraNet
from .cpu import cpu_flags

# hydranet's own way of building a graph (conversion, quantization settings): a change to it
# makes new entries, so a graph built the old way is never read.
GRAPH_RECIPE = "4"
# Flags that change what an engine compiles or quantizes to.
_CPU_FEATURES: tuple[str, ...] = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                  "amx_bf16", "amx_int8")


def engine_cache_dir() -> Path | None:
    """Where converted graphs are kept, or None when ``HYDRANET_ENGINE_CACHE=0``."""
    if os.environ.get("HYDRANET_ENGINE_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if os.environ.get("HYDRANET_HOME"):
        return Path(os.environ["HYDRANET_HOME"]) / "engines"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hydranet" / "engines"


def model_digest(model: HydraNet) -> str:
    """SHA-256 of a network's configuration and every tensor of its state (names, dtypes, values)."""
    h = hashlib.sha256(model.config.to_json().encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16; its bits are what matter
            t = t.view(torch.int16)
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def arrays_digest(arrays: list[np.ndarray]) -> str:
    """SHA-256 of a list of arrays (calibration inputs), shapes included."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cpu_key() -> str:
    """The CPU features an engine's output depends on, e.g. ``avx2-avx512f-avx512_vnni``."""
    flags = cpu_flags()
    return "-".join(f for f in _CPU_FEATURES if f in flags) or "generic"


def entry_path(engine: str, model: str, size: tuple[int, int] | None, precision: str,
               calibration: str = "", suffix: str = ".xml") -> Path | None:
    """The cache file for one graph (None when the cache is off).

    ``engine`` names the engine and its version (``openvino-2025.3.0``), ``model`` is
    :func:`model_digest`, ``calibration`` a digest of the INT8 calibration inputs.
    """
    root = engine_cache_dir()
    if root is None:
        return None
    where = "dynamic" if size is None else f"{size[0]}x{size[1]}"
    key = hashlib.sha256("|".join([engine, model, where, precision, calibration, cpu_key(),
                                   GRAPH_RECIPE]).encode())
    return root / model[:16] / f"{engine}-{precision}-{where}-{key.hexdigest()[:16]}{suffix}"
