"""Raw outputs that downstream code reads back: label PNGs, KITTI 16-bit depth, .npy, JSON sidecar.

- labels: single-channel PNG of class indices (8-bit up to 256 classes, else 16-bit);
- depth: 16-bit PNG in the KITTI convention, ``uint16 = round(metres * 256)``, 0 = no depth
  (so 1/512 m resolution and a 255.99 m ceiling), and float32 metres as ``.npy``;
- a JSON sidecar describing the classes (index, name, colour), units and files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ..fileio import atomic_path

DEPTH_SCALE = 256.0
DEPTH_MAX = 65535 / DEPTH_SCALE

UNITS: dict[str, str] = {
    "labels_png": "class index per pixel (see classes); 8-bit PNG, 16-bit above 256 classes",
    "depth_png": "metres * 256 as uint16 PNG (KITTI convention); 0 = no depth; max 255.996 m",
    "depth_npy": "metres, float32, HxW",
}


def _write_png(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), array):
            raise OSError(f"{path}: could not write PNG (disk full or folder not writable?)")


def save_labels_png(path: str | Path, labels: np.ndarray, num_classes: int | None = None) -> Path:
    """Write class indices as a greyscale PNG: uint8, or uint16 for more than 256 classes.

    Pass ``num_classes`` so that every file of one model has the same bit depth.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be HxW, got shape {labels.shape}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 65535:
        raise ValueError("class indices must be in 0..65535 to be stored as PNG")
    top = max(int(labels.max(initial=0)), (num_classes or 0) - 1)
    dtype = np.uint8 if top <= 255 else np.uint16
    _write_png(Path(path), labels.astype(dtype, copy=False))
    return Path(path)


def depth_to_uint16(depth: np.ndarray) -> np.ndarray:
    """Metres -> KITTI uint16 (``round(d * 256)``); non-finite and negative depths become 0."""
    d = np.nan_to_num(np.asarray(depth, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.rint(d * DEPTH_SCALE), 0, 65535).astype(np.uint16)


def save_depth_png(path: str | Path, depth: np.ndarray) -> Path:
    """Write depth in metres as a KITTI 16-bit PNG (metres * 256)."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be HxW, got shape {depth.shape}")
    _write_png(Path(path), depth_to_uint16(depth))
    return Path(path)


def save_depth_npy(path: str | Path, depth: np.ndarray) -> Path:
    """Write depth in metres as float32 ``.npy``."""
    path = Path(path)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(depth, np.float32))
    return path


def read_labels_png(path: str | Path) -> np.ndarray:
    """A label PNG back as class indices (uint8 or uint16)."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2:
        raise InputError(f"{path}: not a single-channel label PNG")
    return labels


def read_depth_png(path: str | Path) -> np.ndarray:
    """A KITTI 16-bit depth PNG back as float32 metres (0 where there is no depth)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        raise InputError(f"{path}: not a 16-bit single-channel depth PNG")
    return raw.astype(np.float32) / DEPTH_SCALE


def sidecar(class_names: Sequence[str], palette: np.ndarray, *, model: str = "",
            label_set: str | None = None, source: str = "", image_size: tuple[int, int] | None = None,
            files: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON-ready description of raw outputs: classes, units, files and provenance."""
    pal = np.asarray(palette, np.uint8).reshape(-1, 3)
    data: dict[str, Any] = {
        "format": "hydranet-raw/1",
        "source": source,
        "model": model,
        "label_set": label_set,
        "classes": [{"index": i, "name": str(n), "color": [int(v) for v in pal[i]]}
                    for i, n in enumerate(class_names)],
        "units": dict(UNITS),
        "depth_scale": DEPTH_SCALE,
    }
    if image_size is not None:
        data["image_size"] = {"height": int(image_size[0]), "width": int(image_size[1])}
    if files:
        data["files"] = files
    data.update(extra)
    return data


def write_sidecar(path: str | Path, data: dict[str, Any]) -> Path:
    """Write a sidecar dictionary as pretty JSON."""
    path = Path(path)
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
