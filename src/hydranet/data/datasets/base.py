"""What every on-disk dataset shares: records of files, decoding, bad-file policy, pseudo labels, remap.

A concrete format only lists :class:`Record` objects (which files make one sample)
and says how its label and depth files decode; this base turns them into protocol
samples. ``on_bad_label`` decides what a missing or undecodable label/depth file, a
label/depth map of another size than its image, or an unreadable image does: ``"error"``
stops *before* training with one line naming the file (checked by :meth:`verify`),
``"missing"`` drops that target (or, for an image, the sample) with a warning.
Once training runs, a file that turns bad is always treated as a missing target,
so an epoch never dies half-way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ...errors import InputError
from ..sample import IGNORE_INDEX, Sample


BAD_LABEL_POLICIES = ("error", "missing")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")


@dataclass
class Record:
    """The files of one sample; ``extra`` carries format-specific data (e.g. a camera file).

    ``extra["K"]``, a 3x3 camera matrix of the image as stored, becomes the sample's
    ``intrinsics`` and, unless pseudo-depth gave one, its ``focal`` (``fx``).
    """

    name: str
    image: Path
    segmentation: Path | None = None
    depth: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 HxWx3; :class:`InputError` naming the file if it cannot be decoded."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: cannot read image ({exc}); replace or remove the file") from None


def read_png_array(path: Path) -> np.ndarray:
    """A PNG/any image as its raw array (8- or 16-bit), never colour-converted."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: cannot read label/depth file ({exc}); replace it or set "
                         "on_bad_label: missing to train without it") from None
    return arr


def remap_lut(mapping: dict[int, int] | None, size: int = 256) -> np.ndarray | None:
    """A lookup table sending every id in ``mapping`` to its value and everything else to 255."""
    if mapping is None:
        return None
    lut = np.full(max(size, max((int(k) for k in mapping), default=0) + 1), IGNORE_INDEX, np.int64)
    for src, dst in mapping.items():
        lut[int(src)] = int(dst)
    return lut


class SegDepthDataset(Dataset):
    """A list of records decoded into protocol samples.

    ``targets`` picks which targets to use (e.g. only depth from a set that also has
    labels); ``remap`` maps this dataset's class ids to the training label set
    (unlisted ids become 255); ``pseudo_labels`` is a folder written by
    ``hydranet pseudo-label``, used where the real segmentation is missing.
    ``pseudo_depth`` is a folder written by ``hydranet pseudo-depth``, used where a sample
    has no real depth (even when the format itself has no depth target, e.g. CamVid):
    pixels below ``pseudo_depth_threshold`` confidence become 0 (missing), and the sample
    gets ``pseudo_depth = True`` and ``focal`` (pixels at its resolution) from the folder.
    """

    label_set: str | None = None
    void_label: int | None = None  # a label id that means "unlabelled" (read as 255)

    def __init__(self, records: Sequence[Record], targets: Sequence[str] = ("segmentation", "depth"),
                 on_bad_label: str = "error", remap: dict[int, int] | None = None,
                 pseudo_labels: str | Path | None = None, pseudo_threshold: float = 0.0,
                 description: str = "dataset", pseudo_depth: str | Path | None = None,
                 pseudo_depth_threshold: float = 0.5) -> None:
        if on_bad_label not in BAD_LABEL_POLICIES:
            raise InputError(f"on_bad_label must be one of {BAD_LABEL_POLICIES}, got {on_bad_label!r}")
        unknown = [t for t in targets if t not in ("segmentation", "depth")]
        if unknown:
            raise InputError(f"unknown target(s) {unknown}; use segmentation and/or depth")
        self.records = list(records)
        if not self.records:
            raise InputError(f"{description}: no samples found; check root and split")
        self.targets = tuple(targets)
        self.on_bad_label = on_bad_label
        self.lut = remap_lut(remap)
        self.pseudo_labels = Path(pseudo_labels) if pseudo_labels else None
        if self.pseudo_labels is not None and not self.pseudo_labels.is_dir():
            raise InputError(f"{self.pseudo_labels}: pseudo-label folder not found; run "
                             "`hydranet pseudo-label --teacher W --images DIR --out DIR` first")
        self.pseudo_threshold = float(pseudo_threshold)
        self.pseudo_depth = Path(pseudo_depth) if pseudo_depth else None
        self.pseudo_depth_threshold = float(pseudo_depth_threshold)
        self._pseudo_depth_meta: dict[str, Any] = {}
        if self.pseudo_depth is not None:
            from ..pseudo_depth import read_pseudo_depth_meta

            if not self.pseudo_depth.is_dir():
                raise InputError(f"{self.pseudo_depth}: pseudo-depth folder not found; run "
                                 "`hydranet pseudo-depth --root DIR --out DIR` first")
            self._pseudo_depth_meta = read_pseudo_depth_meta(self.pseudo_depth)
        self.description = description
        self._dropped: set[tuple[int, str]] = set()
        self._check_files_exist()

    # -- format hooks -------------------------------------------------------------------
    def decode_segmentation(self, record: Record) -> np.ndarray:
        """Class ids HxW with 255 = ignore, in this dataset's own label set."""
        assert record.segmentation is not None
        arr = read_png_array(record.segmentation)
        if arr.ndim != 2:
            raise InputError(f"{record.segmentation}: expected a single-channel label image, "
                             f"got shape {arr.shape}")
        if self.void_label is not None:
            arr = np.where(arr == self.void_label, IGNORE_INDEX, arr)
        return arr

    def decode_depth(self, record: Record) -> np.ndarray:
        """Depth HxW float32 metres, 0 = missing."""
        raise NotImplementedError

    # -- protocol ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def _check_files_exist(self) -> None:
        for i, r in enumerate(self.records):
            for key in self.targets:
                path = getattr(r, key)
                if path is not None and not Path(path).is_file():
                    self._bad(i, key, f"{path}: {key} file not found")

    def _bad(self, index: int, key: str, message: str, during_training: bool = False) -> None:
        if self.on_bad_label == "error" and not during_training:
            raise InputError(f"{message}; fix the file or set on_bad_label: missing to train without it")
        if (index, key) not in self._dropped:
            self._dropped.add((index, key))
            warnings.warn(f"{message}; {self.records[index].name} is used without {key}", stacklevel=3)

    def verify(self, progress: Callable[[Any], Any] | None = None, num_classes: int | None = None,
               images: bool = False) -> int:
        """Decode every label and depth file once, and with ``images`` (training) every image too.

        Returns the number of samples and targets dropped. With ``images``, an unreadable
        image and a label or depth map whose size differs from its image's stop with one line
        naming the file under ``on_bad_label: error``; under ``missing`` the sample (for an
        image) or the target is dropped with a warning. Evaluation leaves ``images`` off: it
        skips an unreadable image by itself. Label ids of ``num_classes`` or more (other than
        255) are counted in one warning: the loss ignores them like 255, so they cost nothing
        but may be a forgotten ``remap``.
        """
        bad_images: list[int] = []
        unknown_ids: list[tuple[Path, list[int]]] = []
        indices = range(len(self.records))
        for i in progress(indices) if progress else indices:
            record = self.records[i]
            try:
                size = self.load_image(record).shape[:2] if images else None
            except InputError as exc:
                message = str(exc).split("; replace")[0]
                if self.on_bad_label == "error":
                    raise InputError(f"{message}; fix or remove the file, or set on_bad_label: missing "
                                     "to train without it") from None
                warnings.warn(f"{message}; {record.name} is left out", stacklevel=2)
                bad_images.append(i)
                continue
            for key in self.targets:
                path = getattr(record, key)
                if (i, key) in self._dropped or path is None:
                    continue
                try:
                    target = self._load_target(i, key)
                    if size is not None and target.shape != size:
                        raise InputError(f"{path}: {key} is {target.shape[1]}x{target.shape[0]} but the image "
                                         f"{record.image.name} is {size[1]}x{size[0]}")
                except InputError as exc:
                    self._bad(i, key, str(exc).split("; replace")[0])
                    continue
                if key == "segmentation" and num_classes is not None:
                    ids = np.unique(target)
                    extra = ids[(ids >= num_classes) & (ids != IGNORE_INDEX)]
                    if extra.size:
                        unknown_ids.append((path, [int(v) for v in extra[:5]]))
        if unknown_ids:
            path, ids = unknown_ids[0]
            warnings.warn(f"{self.description}: {len(unknown_ids)} label file(s) hold class ids >= {num_classes} "
                          f"(first {path}: {', '.join(map(str, ids))}); training ignores them like 255 "
                          "(set remap: in the dataset entry if they are classes)", stacklevel=2)
        if bad_images:
            self._drop_records(bad_images)
            warnings.warn(f"{self.description}: {len(bad_images)} unreadable image(s) left out; "
                          f"{len(self.records)} samples remain", stacklevel=2)
        return len(bad_images) + len(self._dropped)

    def _drop_records(self, indices: Sequence[int]) -> list[int]:
        """Leave samples out of the dataset; returns the old indices kept (index-keyed state follows them)."""
        gone = set(indices)
        keep = [i for i in range(len(self.records)) if i not in gone]
        if not keep:
            raise InputError(f"{self.description}: none of the {len(gone)} images can be read; check the files")
        new = {old: n for n, old in enumerate(keep)}
        self.records = [self.records[i] for i in keep]
        self._dropped = {(new[i], key) for i, key in self._dropped if i in new}
        return keep

    def _load_target(self, index: int, key: str) -> np.ndarray:
        r = self.records[index]
        if key == "segmentation":
            seg = self.decode_segmentation(r)
            if self.lut is not None:
                seg = self.lut[np.clip(seg.astype(np.int64), 0, len(self.lut) - 1)]
            return seg.astype(np.uint8) if seg.max(initial=0) < 256 else seg.astype(np.int64)
        depth = np.asarray(self.decode_depth(r), dtype=np.float32)
        return np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)

    def _pseudo(self, record: Record, shape: tuple[int, int]) -> np.ndarray | None:
        assert self.pseudo_labels is not None
        for stem in dict.fromkeys((record.name, Path(record.name).name, record.image.stem)):
            path = self.pseudo_labels / f"{stem}.png"
            if path.is_file():
                try:
                    labels = read_png_array(path).astype(np.int64)
                except InputError:
                    return None
                conf_path = self.pseudo_labels / f"{stem}_conf.png"
                if self.pseudo_threshold > 0 and conf_path.is_file():
                    conf = read_png_array(conf_path).astype(np.float32) / 255.0
                    labels = np.where(conf >= self.pseudo_threshold, labels, IGNORE_INDEX)
                if labels.shape != shape:
                    return None
                return labels.astype(np.uint8)
        return None

    def _pseudo_depth_target(self, record: Record, shape: tuple[int, int]) -> tuple[np.ndarray, float] | None:
        from ..pseudo_depth import focal_for, read_pseudo_depth

        assert self.pseudo_depth is not None
        for stem in dict.fromkeys((record.name, Path(record.name).name, record.image.stem)):
            try:
                found = read_pseudo_depth(self.pseudo_depth, stem)
            except InputError:
                return None
            if found is None:
                continue
            depth, conf = found
            if depth.shape != shape:
                return None
            if conf is not None and self.pseudo_depth_threshold > 0:
                depth = np.where(conf >= self.pseudo_depth_threshold, depth, 0).astype(np.float32)
            return depth, focal_for(self._pseudo_depth_meta, stem)
        return None

    def __getitem__(self, index: int) -> Sample:
        r = self.records[index]
        image = self.load_image(r)
        sample: Sample = {"image": image, "name": r.name}
        for key in self.targets:
            if getattr(r, key) is None or (index, key) in self._dropped:
                continue
            try:
                target = self._load_target(index, key)
                if target.shape != image.shape[:2]:
                    raise InputError(f"{getattr(r, key)}: {key} is {target.shape[1]}x{target.shape[0]} "
                                     f"but the image is {image.shape[1]}x{image.shape[0]}")
            except InputError as exc:
                self._bad(index, key, str(exc).split("; ")[0], during_training=True)
                continue
            sample[key] = target
        if "segmentation" in self.targets and "segmentation" not in sample and self.pseudo_labels:
            pseudo = self._pseudo(r, image.shape[:2])
            if pseudo is not None:
                sample["segmentation"] = pseudo
                sample["pseudo"] = True
        if self.pseudo_depth is not None and sample.get("depth") is None:
            found = self._pseudo_depth_target(r, image.shape[:2])
            if found is not None:
                sample["depth"], sample["focal"] = found
                sample["pseudo_depth"] = True
        if r.extra.get("K") is not None:
            sample["intrinsics"] = np.array(r.extra["K"], np.float64)
            # Camera-aware training converts depth for the canonical camera from this focal
            # length (pseudo-depth keeps the one it was made with).
            sample.setdefault("focal", float(sample["intrinsics"][0, 0]))
        return sample

    def load_image(self, record: Record) -> np.ndarray:
        return read_rgb(record.image)


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (sorted)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def find_with_stem(folder: Path, stem: str, suffixes: Sequence[str] = (".png",)) -> Path | None:
    for s in suffixes:
        p = folder / f"{stem}{s}"
        if p.is_file():
            return p
    return None


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise InputError(f"{path}: {what} folder not found; check the dataset root")
    return path


def require_split_file(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"{path}: split file not found; check root and split")
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


