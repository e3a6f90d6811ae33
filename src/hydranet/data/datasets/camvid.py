"""CamVid in the SegNet layout: ``train/ trainannot/ val/ valannot/ test/ testannot/`` and
``{split}.txt`` files of ``image label`` paths; labels 0..10, 11 = void (mapped to 255)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from .base import Record, SegDepthDataset, list_images, read_png_array, require_dir

CAMVID_VOID = 11


def _relative(path_text: str, root: Path) -> Path:
    # SegNet's own lists hold absolute paths such as /SegNet/CamVid/train/x.png: keep the last two parts.
    p = Path(path_text)
    if (root / p).is_file() or not p.is_absolute():
        return root / p
    return root / Path(*p.parts[-2:])


def camvid_records(root: str | Path, split: str = "train") -> list[Record]:
    root = Path(root)
    listing = root / f"{split}.txt"
    records = []
    if listing.is_file():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if not parts:
                continue
            image = _relative(parts[0], root)
            label = _relative(parts[1], root) if len(parts) > 1 else None
            records.append(Record(image.stem, image, segmentation=label))
        return records
    images = require_dir(root / split, f"CamVid {split}")
    annot = root / f"{split}annot"
    for image in list_images(images):
        label = annot / image.name
        records.append(Record(image.stem, image, segmentation=label if annot.is_dir() else None))
    return records


class CamVid(SegDepthDataset):
    """CamVid (SegNet split): segmentation only, 11 classes."""

    label_set = "camvid11"

    def __init__(self, root: str | Path, split: str = "train", **kwargs: Any) -> None:
        kwargs.setdefault("description", f"CamVid {split} in {root}")
        kwargs["targets"] = tuple(t for t in kwargs.get("targets", ("segmentation",)) if t == "segmentation")
        super().__init__(camvid_records(root, split), **kwargs)

    def decode_segmentation(self, record: Record) -> np.ndarray:
        assert record.segmentation is not None
        arr = read_png_array(record.segmentation)
        if arr.ndim != 2:
            raise InputError(f"{record.segmentation}: CamVid labels are single-channel ids 0..11, "
                             f"got shape {arr.shape}")
        out = arr.astype(np.uint8).copy()
        out[(arr == CAMVID_VOID) | (arr > CAMVID_VOID)] = 255
        return out
