"""Cityscapes: ``leftImg8bit``, ``gtFine`` labelIds mapped to the 19 train ids, and
disparity converted to metric depth with the per-image camera JSON.

::

    root/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    root/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png
    root/disparity/{split}/{city}/{city}_{seq}_{frame}_disparity.png
    root/camera/{split}/{city}/{city}_{seq}_{frame}_camera.json

Disparity PNGs store ``p = 256 d + 1`` (``p = 0`` invalid); depth = baseline * fx / d.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from .base import Record, SegDepthDataset, read_png_array, require_dir

# labelIds (0..33) -> train ids (0..18), everything else 255 (cityscapesScripts labels.py).
LABEL_TO_TRAIN: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
    24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}
_LUT = np.full(256, 255, np.uint8)
for _k, _v in LABEL_TO_TRAIN.items():
    _LUT[_k] = _v


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Cityscapes ``labelIds`` image to the 19 train ids (255 = ignore)."""
    return _LUT[np.clip(label_ids, 0, 255).astype(np.uint8)]


def read_camera(path: Path) -> tuple[float, float]:
    """``(baseline_m, fx_px)`` from a Cityscapes camera JSON."""
    try:
        cam = json.loads(Path(path).read_text())
        return float(cam["extrinsic"]["baseline"]), float(cam["intrinsic"]["fx"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a Cityscapes camera file ({type(exc).__name__}: {exc})") from None


def disparity_to_depth(disparity_png: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """Cityscapes disparity PNG values to depth in metres (0 where invalid)."""
    p = disparity_png.astype(np.float32)
    d = np.where(p > 1, (p - 1.0) / 256.0, 0.0)
    with np.errstate(divide="ignore"):
        depth = np.where(d > 0, baseline * fx / np.maximum(d, 1e-6), 0.0)
    return depth.astype(np.float32)


def cityscapes_records(root: str | Path, split: str = "train") -> list[Record]:
    root = Path(root)
    images = require_dir(root / "leftImg8bit" / split, f"Cityscapes leftImg8bit/{split}")
    records = []
    for image in sorted(images.glob("*/*_leftImg8bit.png")):
        city = image.parent.name
        stem = image.name[: -len("_leftImg8bit.png")]
        seg = root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"
        disp = root / "disparity" / split / city / f"{stem}_disparity.png"
        cam = root / "camera" / split / city / f"{stem}_camera.json"
        records.append(Record(
            f"{city}/{stem}", image,
            segmentation=seg if (root / "gtFine").is_dir() else None,
            depth=disp if (root / "disparity").is_dir() else None,
            extra={"camera": cam},
        ))
    return records


class Cityscapes(SegDepthDataset):
    """Cityscapes fine annotations (19 classes) and stereo depth."""

    label_set = "cityscapes19"

    def __init__(self, root: str | Path, split: str = "train", **kwargs: Any) -> None:
        kwargs.setdefault("description", f"Cityscapes {split} in {root}")
        super().__init__(cityscapes_records(root, split), **kwargs)

    def decode_segmentation(self, record: Record) -> np.ndarray:
        return label_ids_to_train_ids(super().decode_segmentation(record))

    def decode_depth(self, record: Record) -> np.ndarray:
        assert record.depth is not None
        disp = read_png_array(record.depth)
        if disp.ndim != 2:
            raise InputError(f"{record.depth}: expected a 16-bit disparity PNG, got shape {disp.shape}")
        baseline, fx = read_camera(record.extra["camera"])
        return disparity_to_depth(disp, baseline, fx)
