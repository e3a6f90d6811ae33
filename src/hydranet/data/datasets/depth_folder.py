"""Real frames with sparse metric depth (LiDAR or stereo) and optional camera matrices.

::

    root/[split/]images/NAME.{png,jpg}
    root/[split/]depth/NAME.png        uint16, metres * depth_scale (256), 0 = no ground truth
    root/[split/]intrinsics/NAME.txt   optional, the 3x3 camera matrix K of that image
                                       (whitespace separated, 9 numbers)
    root/[split/]labels/NAME.png       optional, 8-bit class ids (void_label -> 255)

Samples follow the sample protocol (``image``, ``depth``, optional ``segmentation``,
``name``) plus ``intrinsics``: the ``(3, 3)`` float64 ``K`` when the image has an
intrinsics file (the key is absent otherwise). ``K`` refers to the image as stored, so a
transform that resizes or crops the image must not be applied without adjusting it.

Every image needs its depth file: a missing or undecodable one, or a bad intrinsics
file, is a one-line :class:`InputError` naming the file (``on_bad_label: missing``
drops that target with a warning instead, as in :mod:`.base`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...errors import InputError
from .base import Record, SegDepthDataset, find_with_stem, list_images, read_png_array, require_dir


def read_intrinsics(path: str | Path) -> np.ndarray:
    """A 3x3 camera matrix from a text file of 9 whitespace-separated numbers (float64)."""
    path = Path(path)
    fix = "write the 3x3 camera matrix K as 3 lines of 3 numbers, or remove the file"
    try:
        values = [float(v) for v in path.read_text().split()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read intrinsics ({type(exc).__name__}); {fix}") from None
    except ValueError as exc:
        raise InputError(f"{path}: intrinsics are not numbers ({exc}); {fix}") from None
    if len(values) != 9:
        raise InputError(f"{path}: intrinsics hold {len(values)} numbers, expected 9; {fix}")
    k = np.asarray(values, np.float64).reshape(3, 3)
    if not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise InputError(f"{path}: intrinsics need finite values and positive focal lengths "
                         f"(fx {k[0, 0]:g}, fy {k[1, 1]:g}); {fix}")
    return k


def depth_folder_records(root: str | Path, split: str | None = None) -> list[Record]:
    """One record per file of ``images/``; depth/, intrinsics/ and labels/ are matched by name."""
    root = Path(root)
    base = root / split if split and (root / split / "images").is_dir() else root
    images = require_dir(base / "images", "images/")
    depth = require_dir(base / "depth", "depth/")
    labels, intrinsics = base / "labels", base / "intrinsics"
    records = []
    for image in list_images(images):
        k = intrinsics / f"{image.stem}.txt"
        records.append(Record(
            image.stem, image,
            segmentation=find_with_stem(labels, image.stem) if labels.is_dir() else None,
            # Always a path, so that a missing depth file is reported (not silently absent).
            depth=depth / f"{image.stem}.png",
            extra={"intrinsics": k} if k.is_file() else {},
        ))
    return records


class DepthFolder(SegDepthDataset):
    """Real images with sparse uint16 depth PNGs and optional intrinsics (see module docstring)."""

    def __init__(self, root: str | Path, split: str | None = None, depth_scale: float = 256.0,
                 void_label: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("description", f"depth folder {root}")
        kwargs.setdefault("targets", ("segmentation", "depth"))
        self.depth_scale = float(depth_scale)
        self.void_label = void_label
        records = depth_folder_records(root, split)
        super().__init__(records, **kwargs)
        # Camera files are tiny: read them all now, so that a bad one stops before any work.
        for i, r in enumerate(self.records):
            if "intrinsics" in r.extra:
                try:
                    r.extra["K"] = read_intrinsics(r.extra["intrinsics"])
                except InputError as exc:
                    if self.on_bad_label == "error":
                        raise
                    self._bad(i, "intrinsics", str(exc).split("; ")[0])

    def decode_depth(self, record: Record) -> np.ndarray:
        assert record.depth is not None
        arr = read_png_array(record.depth)
        if arr.ndim != 2 or arr.dtype not in (np.uint16, np.int32, np.uint32):
            raise InputError(f"{record.depth}: not a sparse depth map (expected a single-channel "
                             f"16-bit PNG of metres x {self.depth_scale:g}, got {arr.dtype} {arr.shape}); "
                             "replace it or set on_bad_label: missing to evaluate without it")
        try:
            with Image.open(record.image) as im:
                width, height = im.size
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
            width, height = arr.shape[1], arr.shape[0]  # the image's own error comes when it is read
        if arr.shape != (height, width):
            raise InputError(f"{record.depth}: depth is {arr.shape[1]}x{arr.shape[0]} but its image "
                             f"{record.image.name} is {width}x{height}; replace it with the depth map of "
                             "that image or set on_bad_label: missing to evaluate without it")
        return arr.astype(np.float32) / self.depth_scale

