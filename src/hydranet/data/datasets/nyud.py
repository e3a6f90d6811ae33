"""NYU Depth v2: the reference PNG layout and the official labelled ``.mat``.

PNG layout (40 classes 0..39, 255 = ignore; depth uint16 / 5000 = metres, 0 = missing),
any of::

    root/{split}.txt               lines "rgb segm depth" (paths relative to root; 1-3 columns)
    root/[split/]{rgb,images}/X.png  root/[split/]{masks,labels,segm}/X.png  root/[split/]depth/X.png
    root/[split/]X.png  segm_gt_X.png  depth_gt_X.png      (the reference repository's examples)

Official ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5, read with h5py; small v5
files with scipy): ``images`` (480x640x3xN), ``depths`` (metres), ``labels`` (894
classes, 0 = unlabelled). ``class_map`` maps the 894 classes to 40 (Gupta et al.'s
``classMapping40.mat`` with ``mapClass``, or a text/npy list of 894 ids 1..40);
``split_file`` is ``splits.mat`` (``trainNdxs`` / ``testNdxs``, 1-based) or a text list
of 1-based indices.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from .base import Record, SegDepthDataset, find_with_stem, list_images, read_png_array

NYUD_DEPTH_SCALE = 5000.0


def _first_dir(base: Path, names: tuple[str, ...]) -> Path | None:
    for n in names:
        if (base / n).is_dir():
            return base / n
    return None


def nyud_png_records(root: str | Path, split: str | None = None) -> list[Record]:
    root = Path(root)
    listing = root / f"{split}.txt" if split else None
    records = []
    if listing is not None and listing.is_file():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if not parts:
                continue
            paths = [root / p for p in parts] + [None, None]
            records.append(Record(Path(parts[0]).stem, paths[0], segmentation=paths[1], depth=paths[2]))
        return records
    base = root / split if split and (root / split).is_dir() else root
    rgb = _first_dir(base, ("rgb", "images", "image"))
    if rgb is not None:
        segs = _first_dir(base, ("masks", "labels", "segm", "label"))
        depth = _first_dir(base, ("depth", "depths"))
        for image in list_images(rgb):
            records.append(Record(
                image.stem, image,
                segmentation=find_with_stem(segs, image.stem) if segs else None,
                depth=find_with_stem(depth, image.stem) if depth else None))
        return records
    for image in list_images(base):
        if image.name.startswith(("segm_gt_", "depth_gt_", "norm_gt_")):
            continue
        records.append(Record(image.stem, image,
                              segmentation=find_with_stem(base, f"segm_gt_{image.stem}"),
                              depth=find_with_stem(base, f"depth_gt_{image.stem}")))
    return records


class NYUDv2(SegDepthDataset):
    """NYUDv2 in the reference PNG layout: 40 classes + depth."""

    label_set = "nyud40"

    def __init__(self, root: str | Path, split: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("description", f"NYUDv2 {split or ''} in {root}")
        super().__init__(nyud_png_records(root, split), **kwargs)

    def decode_depth(self, record: Record) -> np.ndarray:
        assert record.depth is not None
        arr = read_png_array(record.depth)
        if arr.ndim != 2 or arr.dtype == np.uint8:
            raise InputError(f"{record.depth}: expected a 16-bit NYUD depth PNG (metres * 5000), "
                             f"got {arr.dtype} {arr.shape}")
        return arr.astype(np.float32) / NYUD_DEPTH_SCALE


# -- the official labelled .mat --------------------------------------------------------------

def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(520)
    # MATLAB v7.3 files are HDF5 with a 512-byte user block before the signature.
    return b"\x89HDF\r\n\x1a\n" in head


class _MatFile:
    """Uniform access to ``images``/``depths``/``labels`` of v7.3 (HDF5) and v5 .mat files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hdf5 = _is_hdf5(path)
        self._h5: Any = None
        self._pid = -1
        self._v5: dict[str, np.ndarray] | None = None

    def _open(self) -> Any:
        if self.hdf5:
            if self._h5 is None or self._pid != os.getpid():  # one handle per process (DataLoader workers)
                try:
                    import h5py
                except ImportError:
                    raise InputError(f"{self.path}: MATLAB v7.3 file needs h5py; "
                                     "pip install 'hydranet[train]'") from None
                try:
                    self._h5 = h5py.File(self.path, "r")
                except OSError as exc:
                    raise InputError(f"{self.path}: cannot open HDF5 .mat ({exc})") from None
                self._pid = os.getpid()
            return self._h5
        if self._v5 is None:
            from scipy.io import loadmat

            try:
                self._v5 = loadmat(self.path, variable_names=("images", "depths", "labels"))
            except (ValueError, OSError, NotImplementedError) as exc:
                raise InputError(f"{self.path}: cannot read .mat ({exc})") from None
        return self._v5

    def count(self) -> int:
        f = self._open()
        if "images" not in f:
            raise InputError(f"{self.path}: no 'images' variable; expected nyu_depth_v2_labeled.mat")
        return int(f["images"].shape[0] if self.hdf5 else f["images"].shape[-1])

    def has(self, key: str) -> bool:
        return key in self._open()

    def get(self, key: str, index: int) -> np.ndarray:
        f = self._open()
        if self.hdf5:
            # h5py sees MATLAB's column-major arrays reversed: (N, C, W, H) / (N, W, H).
            a = np.asarray(f[key][index])
            return a.transpose(2, 1, 0) if a.ndim == 3 else a.T
        a = f[key]
        return a[..., index]


def _read_index_list(path: Path, split: str) -> list[int]:
    """0-based indices of ``split`` from ``splits.mat`` or a text list of 1-based indices."""
    if path.suffix == ".mat":
        from scipy.io import loadmat

        key = {"train": "trainNdxs", "test": "testNdxs", "val": "testNdxs"}.get(split, split)
        try:
            data = loadmat(path)
        except (ValueError, OSError, NotImplementedError) as exc:
            raise InputError(f"{path}: cannot read split file ({exc})") from None
        if key not in data:
            raise InputError(f"{path}: no {key!r} in the split file; use split train or test")
        return [int(i) - 1 for i in np.asarray(data[key]).ravel()]
    return [int(t) - 1 for t in path.read_text().split()]


def _read_class_map(path: Path) -> np.ndarray:
    """LUT from the 894 raw classes (index 0 = unlabelled) to 0..39 / 255."""
    if path.suffix == ".mat":
        from scipy.io import loadmat

        try:
            ids = np.asarray(loadmat(path)["mapClass"]).ravel()
        except (ValueError, OSError, KeyError, NotImplementedError) as exc:
            raise InputError(f"{path}: expected classMapping40.mat with 'mapClass' ({exc})") from None
    elif path.suffix == ".npy":
        ids = np.load(path).ravel()
    else:
        ids = np.asarray(path.read_text().split(), dtype=np.int64)
    lut = np.full(len(ids) + 1, 255, np.int64)
    lut[1:] = np.where((ids >= 1) & (ids <= 255), ids - 1, 255)
    return lut


class NYUDv2Mat(SegDepthDataset):
    """NYUDv2 from the official labelled .mat (1449 frames)."""

    label_set = "nyud40"

    def __init__(self, root: str | Path, split: str | None = None, split_file: str | Path | None = None,
                 class_map: str | Path | None = None, **kwargs: Any) -> None:
        path = Path(root)
        if path.is_dir():
            path = path / "nyu_depth_v2_labeled.mat"
        if not path.is_file():
            raise InputError(f"{path}: labelled NYUDv2 .mat not found; pass the file as root")
        self.mat = _MatFile(path)
        n = self.mat.count()
        indices = list(range(n))
        if split_file is not None and split:
            indices = _read_index_list(Path(split_file), split)
            bad = [i + 1 for i in indices if not 0 <= i < n]
            if bad:
                raise InputError(f"{split_file}: indices {bad[:3]} outside 1..{n}")
        targets = tuple(kwargs.pop("targets", ("segmentation", "depth")))
        self.class_lut = _read_class_map(Path(class_map)) if class_map else None
        if "segmentation" in targets and self.class_lut is None:
            raise InputError(f"{path}: segmentation from the labelled .mat needs class_map "
                             "(classMapping40.mat mapping 894 classes to 40); or use targets: [depth]")
        records = [Record(f"nyud_{i + 1:04d}", path,
                          segmentation=path if self.mat.has("labels") else None,
                          depth=path if self.mat.has("depths") else None, extra={"index": i})
                   for i in indices]
        kwargs.setdefault("description", f"NYUDv2 labelled .mat {path}")
        super().__init__(records, targets=targets, **kwargs)

    def load_image(self, record: Record) -> np.ndarray:
        im = self.mat.get("images", record.extra["index"])
        return np.ascontiguousarray(im.astype(np.uint8))

    def decode_segmentation(self, record: Record) -> np.ndarray:
        assert self.class_lut is not None
        raw = self.mat.get("labels", record.extra["index"]).astype(np.int64)
        return self.class_lut[np.clip(raw, 0, len(self.class_lut) - 1)].astype(np.uint8)

    def decode_depth(self, record: Record) -> np.ndarray:
        return self.mat.get("depths", record.extra["index"]).astype(np.float32)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["mat"] = _MatFile(self.mat.path)  # h5py handles do not cross process boundaries
        return state
