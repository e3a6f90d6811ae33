"""Readers for real on-disk dataset layouts, one module per format, and a builder from config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import InputError
from .base import Record, SegDepthDataset
from .camvid import CamVid
from .cityscapes import Cityscapes
from .depth_folder import DepthFolder
from .folder import FolderDataset
from .kitti import Kitti6Segmentation, KittiDepth, decode_colour_labels
from .mix import MixedDataset, TargetFilter, parse_remap, remap_by_name
from .nyud import NYUDv2, NYUDv2Mat
from .video import VideoFrames

DATASET_TYPES: dict[str, type] = {
    "camvid": CamVid,
    "cityscapes": Cityscapes,
    "kitti_depth": KittiDepth,
    "kitti6": Kitti6Segmentation,
    "nyud": NYUDv2,
    "nyud_mat": NYUDv2Mat,
    "folder": FolderDataset,
    "depth_folder": DepthFolder,
    "video": VideoFrames,
}

# Keys of a dataset entry that are not constructor arguments.
_BUILDER_KEYS = {"type", "root", "split", "remap", "repeat", "label_set", "targets", "on_bad_label",
                 "pseudo_labels", "pseudo_threshold", "pseudo_depth", "pseudo_depth_threshold", "options"}


def synthetic_factory() -> Any:
    """The synthetic driving-scene dataset class, when this installation has it."""
    try:
        from .. import synthetic  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(synthetic, "SyntheticDrivingDataset", None)


def build_dataset(spec: Mapping[str, Any], target_label_set: str | None = None,
                  split: str | None = None, on_bad_label: str = "error") -> Any:
    """One dataset from a config entry such as ``{type: camvid, root: DIR, split: train}``.

    ``remap`` (``by_name`` or ``{id: id}``) maps the dataset's classes to
    ``target_label_set``; extra keys go to the reader (e.g. ``split_file``, ``raw_root``).
    """
    kind = spec.get("type")
    if kind == "synthetic":
        cls = synthetic_factory()
        if cls is None:
            raise InputError("dataset type synthetic needs hydranet.data.synthetic, "
                             "which this installation does not have")
        opts = {k: v for k, v in spec.items() if k not in _BUILDER_KEYS}
        opts.update(spec.get("options") or {})
        if isinstance(opts.get("cache_dir"), str):
            opts["cache_dir"] = str(Path(opts["cache_dir"]).expanduser())
        try:
            ds = cls(**opts)
        except (TypeError, ValueError) as exc:
            raise InputError(f"dataset synthetic: bad option in config ({exc})") from None
        remap = parse_remap(spec.get("remap"), spec.get("label_set") or "camvid11", target_label_set)
        if remap is None and spec.get("targets") is None:
            return ds
        return TargetFilter(ds, spec.get("targets"), remap)
    if kind not in DATASET_TYPES:
        raise InputError(f"unknown dataset type {kind!r}; choose from {', '.join(DATASET_TYPES)}, synthetic")
    if not spec.get("root"):
        raise InputError(f"dataset {kind}: 'root' is missing in the config")
    cls = DATASET_TYPES[kind]
    root = Path(str(spec["root"])).expanduser()
    if not root.exists():
        raise InputError(f"{root}: dataset root of {kind} not found; fix the dataset's root "
                         "(--root, or 'root' in the config)")
    source_set = spec.get("label_set") or getattr(cls, "label_set", None)
    kwargs: dict[str, Any] = {k: v for k, v in spec.items() if k not in _BUILDER_KEYS}
    kwargs.update(spec.get("options") or {})
    remap = parse_remap(spec.get("remap"), source_set, target_label_set)
    if remap is not None:
        kwargs["remap"] = remap
    if spec.get("targets") is not None:
        kwargs["targets"] = tuple(spec["targets"])
    kwargs["on_bad_label"] = spec.get("on_bad_label", on_bad_label)
    if spec.get("pseudo_labels"):
        kwargs["pseudo_labels"] = spec["pseudo_labels"]
        kwargs["pseudo_threshold"] = float(spec.get("pseudo_threshold", 0.0))
    if spec.get("pseudo_depth"):
        kwargs["pseudo_depth"] = spec["pseudo_depth"]
        kwargs["pseudo_depth_threshold"] = float(spec.get("pseudo_depth_threshold", 0.5))
    use_split = spec.get("split", split)
    if use_split is not None:
        kwargs["split"] = use_split
    try:
        return cls(root, **kwargs)
    except TypeError as exc:
        raise InputError(f"dataset {kind}: bad option in config ({exc})") from None


__all__ = [
    "DATASET_TYPES", "CamVid", "Cityscapes", "DepthFolder", "FolderDataset", "Kitti6Segmentation", "KittiDepth",
    "MixedDataset", "NYUDv2", "TargetFilter", "NYUDv2Mat", "Record", "SegDepthDataset", "VideoFrames",
    "build_dataset",
    "decode_colour_labels", "parse_remap", "remap_by_name",
]
