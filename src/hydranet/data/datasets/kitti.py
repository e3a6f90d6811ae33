"""KITTI: raw frames with LiDAR depth (depth-completion layout, Eigen split lists) and the
paper's KITTI-6 colour-coded segmentation ground truth.

Depth (KITTI depth completion / ``data_depth_annotated``)::

    depth_root/{train,val}/2011_09_26_drive_0001_sync/proj_depth/groundtruth/image_02/0000000005.png
    raw_root/2011_09_26/2011_09_26_drive_0001_sync/image_02/data/0000000005.png

16-bit PNG, metres * 256, 0 = no LiDAR return. Split lists may be the monodepth2
form (``2011_09_26/2011_09_26_drive_0002_sync 69 l``) or Eigen's original
(``2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png ...``).
Frames of a list without ground truth get no depth target (asymmetric annotation).

KITTI-6 segmentation: RGB colour images (sky, building, road, sidewalk, vegetation,
car in CamVid colours; black and any other colour = void), either
``root/[split/]images/X.png`` + ``labels/X.png`` or ``X.png`` + ``segm_gt_X.png`` side
by side (the reference repository's example naming).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ...errors import InputError
from ...labels import KITTI6, LabelSet
from ..sample import IGNORE_INDEX
from .base import (Record, SegDepthDataset, find_with_stem, list_images, read_png_array, read_rgb,
                   require_split_file)

KITTI_DEPTH_SCALE = 256.0
_SIDES = {"l": "image_02", "r": "image_03", "2": "image_02", "3": "image_03"}


def decode_colour_labels(rgb: np.ndarray, label_set: LabelSet = KITTI6) -> np.ndarray:
    """Colour-coded HxWx3 labels to class ids; colours outside the palette become 255."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise InputError(f"expected an RGB colour label image, got shape {rgb.shape}")
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    out = np.full(code.shape, IGNORE_INDEX, np.uint8)
    for cls, (r, g, b) in enumerate(label_set.palette):
        out[code == ((r << 16) | (g << 8) | b)] = cls
    return out


def _frame_index(token: str) -> str:
    return f"{int(token):010d}"


def _parse_split_line(line: str, default_camera: str) -> tuple[str, str, str]:
    """(``date/drive``, ``frame``, ``camera``) from a monodepth2 or Eigen list line."""
    parts = line.split()
    first = parts[0]
    if "/image_0" in first:  # Eigen: date/drive/image_02/data/frame.ext
        p = Path(first)
        return str(Path(*p.parts[:2])), p.stem, p.parts[2]
    camera = _SIDES.get(parts[2], default_camera) if len(parts) > 2 else default_camera
    return first, _frame_index(parts[1]) if len(parts) > 1 else "0", camera


def _raw_image(raw_root: Path, date_drive: str, camera: str, frame: str) -> Path:
    folder = raw_root / date_drive / camera / "data"
    found = find_with_stem(folder, frame, (".png", ".jpg"))
    return found if found is not None else folder / f"{frame}.png"


def _depth_file(depth_root: Path, drive: str, camera: str, frame: str,
                splits: tuple[str, ...] = ("train", "val")) -> Path | None:
    for s in splits:
        p = depth_root / s / drive / "proj_depth" / "groundtruth" / camera / f"{frame}.png"
        if p.is_file():
            return p
    return None


def _cameras(raw_root: Path) -> Callable[[str, str], dict[str, Any]]:
    """``extra`` for a frame of ``date_drive`` seen by ``camera``: ``K`` from the date's
    ``calib_cam_to_cam.txt`` (``P_rect_02`` / ``P_rect_03``, the rectified images' camera), or
    nothing when the raw data has no calibration file. Each file is read once."""
    from ...inference.pointcloud import read_kitti_calib

    found: dict[tuple[str, str], dict[str, Any]] = {}

    def extra(date_drive: str, camera: str) -> dict[str, Any]:
        date = Path(date_drive).parts[0]
        if (date, camera) not in found:
            calib = raw_root / date / "calib_cam_to_cam.txt"
            found[date, camera] = {}
            if calib.is_file():
                k = read_kitti_calib(calib, camera[-2:])
                found[date, camera] = {"K": np.array([[k.fx, 0, k.cx], [0, k.fy, k.cy], [0, 0, 1]])}
        return dict(found[date, camera])

    return extra


def kitti_depth_records(root: str | Path, split: str = "train", split_file: str | Path | None = None,
                        raw_root: str | Path | None = None, depth_root: str | Path | None = None,
                        camera: str = "image_02") -> list[Record]:
    root = Path(root)
    raw = Path(raw_root) if raw_root else (root / "raw" if (root / "raw").is_dir() else root)
    dep = Path(depth_root) if depth_root else (
        root / "data_depth_annotated" if (root / "data_depth_annotated").is_dir() else root)
    cameras = _cameras(raw)
    records = []
    if split_file is not None:
        sf = Path(split_file)
        sf = sf if sf.is_file() or sf.is_absolute() else root / sf
        for line in require_split_file(sf):
            date_drive, frame, cam = _parse_split_line(line, camera)
            drive = Path(date_drive).name
            records.append(Record(f"{drive}/{cam}/{frame}", _raw_image(raw, date_drive, cam, frame),
                                  depth=_depth_file(dep, drive, cam, frame), extra=cameras(date_drive, cam)))
        return records
    split_dir = dep / split
    if not split_dir.is_dir():
        raise InputError(f"{split_dir}: KITTI depth split folder not found; expected "
                         "depth_root/{train,val}/<drive>/proj_depth/groundtruth/image_02/*.png")
    for drive_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        drive = drive_dir.name
        date_drive = f"{drive[:10]}/{drive}"
        gt_dir = drive_dir / "proj_depth" / "groundtruth" / camera
        if not gt_dir.is_dir():
            continue
        for depth in sorted(gt_dir.glob("*.png")):
            records.append(Record(f"{drive}/{camera}/{depth.stem}",
                                  _raw_image(raw, date_drive, camera, depth.stem), depth=depth,
                                  extra=cameras(date_drive, camera)))
    return records


def decode_kitti_depth(path: Path) -> np.ndarray:
    arr = read_png_array(path)
    if arr.ndim != 2 or arr.dtype not in (np.uint16, np.int32, np.uint32):
        raise InputError(f"{path}: not a KITTI depth map (expected a 16-bit single-channel PNG, "
                         f"got {arr.dtype} {arr.shape})")
    return arr.astype(np.float32) / KITTI_DEPTH_SCALE


class KittiDepth(SegDepthDataset):
    """KITTI raw frames with projected LiDAR depth; no segmentation (use pseudo labels for it).

    Samples carry ``intrinsics`` from ``raw_root/DATE/calib_cam_to_cam.txt`` when the raw data
    has it, so camera-aware weights are scored for KITTI's own camera.
    """

    label_set = "kitti6"

    def __init__(self, root: str | Path, split: str = "train", split_file: str | Path | None = None,
                 raw_root: str | Path | None = None, depth_root: str | Path | None = None,
                 camera: str = "image_02", **kwargs: Any) -> None:
        kwargs.setdefault("description", f"KITTI depth {split} in {root}")
        kwargs.setdefault("targets", ("segmentation", "depth"))
        super().__init__(kitti_depth_records(root, split, split_file, raw_root, depth_root, camera), **kwargs)

    def _check_files_exist(self) -> None:
        for i, r in enumerate(self.records):
            if not r.image.is_file():
                raise InputError(f"{r.image}: KITTI raw frame not found; set raw_root to the folder "
                                 "holding 2011_09_26/2011_09_26_drive_*_sync/")
        super()._check_files_exist()

    def decode_depth(self, record: Record) -> np.ndarray:
        assert record.depth is not None
        return decode_kitti_depth(record.depth)


def kitti6_records(root: str | Path, split: str | None = None) -> list[Record]:
    root = Path(root)
    base = root / split if split and (root / split).is_dir() else root
    records = []
    if (base / "images").is_dir():
        labels = base / "labels"
        for image in list_images(base / "images"):
            seg = find_with_stem(labels, image.stem) or find_with_stem(labels, f"segm_gt_{image.stem}")
            records.append(Record(image.stem, image, segmentation=seg))
        return records
    for image in list_images(base):
        if image.name.startswith(("segm_gt_", "depth_gt_", "norm_gt_")):
            continue
        records.append(Record(image.stem, image, segmentation=find_with_stem(base, f"segm_gt_{image.stem}")))
    return records


class Kitti6Segmentation(SegDepthDataset):
    """The paper's KITTI-6 segmentation set: colour-coded ground truth, no depth."""

    label_set = "kitti6"

    def __init__(self, root: str | Path, split: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("description", f"KITTI-6 segmentation in {root}")
        kwargs["targets"] = tuple(t for t in kwargs.get("targets", ("segmentation",)) if t == "segmentation")
        super().__init__(kitti6_records(root, split), **kwargs)

    def decode_segmentation(self, record: Record) -> np.ndarray:
        assert record.segmentation is not None
        arr = read_png_array(record.segmentation)
        if arr.ndim == 2 and arr.dtype == np.uint8 and self._palette_mode(record.segmentation):
            arr = read_rgb(record.segmentation)
        if arr.ndim == 2:  # already class ids
            return arr
        try:
            return decode_colour_labels(arr, KITTI6)
        except InputError as exc:
            raise InputError(f"{record.segmentation}: {exc}") from None

    @staticmethod
    def _palette_mode(path: Path) -> bool:
        with Image.open(path) as im:
            return im.mode == "P"
