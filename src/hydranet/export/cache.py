"""A disk cache of converted (and quantized) engine graphs, so a second run pays nothing.

Converting a network through ONNX takes a few seconds and INT8 quantization with NNCF
about ten (once, or once per input size for a graph that only holds at one size); both
depend only on the weights, the input size, the precision, the calibration inputs, the
engine's version, hydranet's recipe for building the graph and the CPU (INT8 ranges differ
with and without VNNI). The key holds all of them, so any change makes a new entry and a
stale one is never read. ``$HYDRANET_HOME/engines``, else ``$XDG_CACHE_HOME/hydranet/engines``;
``HYDRANET_ENGINE_CACHE=0`` turns the cache off.

Stale entries are never read but would stay on disk, so the cache is bounded: an entry is
marked used when read, and after a new entry is written the least recently used ones are
removed until the cache fits ``HYDRANET_ENGINE_CACHE_MB`` (default 1024). ``hydranet cache``
shows it and clears it.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..model import HydraNet
from .cpu import cpu_flags

# hydranet's own way of building a graph (conversion, quantization settings): a change to it
# makes new entries, so a graph built the old way is never read.
GRAPH_RECIPE = "5"
# Flags that change what an engine compiles or quantizes to.
_CPU_FEATURES: tuple[str, ...] = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                  "amx_bf16", "amx_int8")
DEFAULT_LIMIT_MB = 1024  # the bundled model's graphs take 4-17 MB per input size and precision


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


@dataclass(frozen=True)
class Entry:
    """One cached graph: its files (an OpenVINO ``.xml`` and its ``.bin``), bytes, last use."""

    files: tuple[Path, ...]
    size: int
    used: float


def cache_limit_bytes() -> int:
    """``HYDRANET_ENGINE_CACHE_MB`` (default :data:`DEFAULT_LIMIT_MB`) in bytes."""
    value = os.environ.get("HYDRANET_ENGINE_CACHE_MB", "").strip()
    try:
        mb = float(value) if value else float(DEFAULT_LIMIT_MB)
    except ValueError:
        mb = -1.0
    if not mb >= 0:
        from ..errors import InputError

        raise InputError(f"HYDRANET_ENGINE_CACHE_MB={value!r}: give the cache's size limit in MB, e.g. 1024")
    return int(mb * 1024 * 1024)


def entries(root: Path | None = None) -> list[Entry]:
    """The cache's entries, least recently used first."""
    root = engine_cache_dir() if root is None else root
    if root is None or not root.is_dir():
        return []
    found = []
    for xml in root.glob("*/*.xml"):
        files = tuple(f for f in (xml, xml.with_suffix(".bin")) if f.is_file())
        try:
            stats = [f.stat() for f in files]
        except OSError:  # removed meanwhile by another process
            continue
        found.append(Entry(files, sum(st.st_size for st in stats), max(st.st_mtime for st in stats)))
    return sorted(found, key=lambda e: e.used)


def mark_used(path: Path) -> None:
    """Record that the entry of ``path`` (its ``.xml``) was just read."""
    now = time.time()
    for f in (path, path.with_suffix(".bin")):
        try:
            os.utime(f, (now, now))
        except OSError:
            pass  # a read-only cache still works; it only forgets what was used


def prune(limit: int | None = None, keep: Path | None = None, root: Path | None = None) -> list[Entry]:
    """Remove the least recently used entries until the cache holds at most ``limit`` bytes
    (default :func:`cache_limit_bytes`), never the entry of ``keep``; the removed entries."""
    root = engine_cache_dir() if root is None else root
    if root is None:
        return []
    limit = cache_limit_bytes() if limit is None else limit
    found = entries(root)
    total = sum(e.size for e in found)
    removed = []
    for entry in found:
        if total <= limit:
            break
        if keep is not None and keep in entry.files:
            continue
        for f in entry.files:
            try:
                f.unlink()
            except FileNotFoundError:
                pass
        total -= entry.size
        removed.append(entry)
        try:
            entry.files[0].parent.rmdir()  # only when that model has no entry left
        except OSError:
            pass
    return removed
