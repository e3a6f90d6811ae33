"""A plain folder layout for custom data.

::

    root/[split/]images/NAME.{png,jpg}
    root/[split/]labels/NAME.png     optional, 8-bit class ids (void_label -> 255)
    root/[split/]depth/NAME.png      optional, 16-bit, metres * depth_scale (0 = missing)
                   or depth/NAME.npy  optional, float metres

A ``split.txt`` beside ``images/`` (one NAME per line) restricts the samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from .base import Record, SegDepthDataset, find_with_stem, list_images, read_png_array, require_dir


def folder_records(root: str | Path, split: str | None = None) -> list[Record]:
    root = Path(root)
    base = root / split if split and (root / split / "images").is_dir() else root
    images = require_dir(base / "images", "images/")
    names = None
    listing = root / f"{split}.txt" if split else None
    if listing is not None and listing.is_file():
        names = {ln.strip() for ln in listing.read_text().splitlines() if ln.strip()}
    labels, depth = base / "labels", base / "depth"
    records = []
    for image in list_images(images):
        if names is not None and image.stem not in names and image.name not in names:
            continue
        records.append(Record(
            image.stem, image,
            segmentation=find_with_stem(labels, image.stem) if labels.is_dir() else None,
            depth=find_with_stem(depth, image.stem, (".png", ".npy", ".tif", ".tiff")) if depth.is_dir() else None,
        ))
    return records


class FolderDataset(SegDepthDataset):
    """Images with optional labels and depth in sibling folders (see module docstring)."""

    def __init__(self, root: str | Path, split: str | None = None, depth_scale: float = 256.0,
                 void_label: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("description", f"folder dataset {root}")
        self.depth_scale = float(depth_scale)
        self.void_label = void_label
        super().__init__(folder_records(root, split), **kwargs)

    def decode_depth(self, record: Record) -> np.ndarray:
        assert record.depth is not None
        if record.depth.suffix == ".npy":
            try:
                d = np.load(record.depth, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise InputError(f"{record.depth}: cannot read depth array ({exc})") from None
            return np.asarray(d, np.float32)
        arr = read_png_array(record.depth)
        if arr.ndim != 2:
            raise InputError(f"{record.depth}: expected a single-channel 16-bit depth PNG, got {arr.shape}")
        return arr.astype(np.float32) / self.depth_scale
