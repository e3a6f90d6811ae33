"""The sample protocol shared by every dataset, transform and the trainer.

A dataset item is a dict:

- ``"image"``: RGB ``uint8`` HxWx3 numpy array;
- ``"segmentation"`` (optional): ``uint8``/``int64`` HxW class ids, ``255`` = ignore
  (each dataset maps its own void value to 255);
- ``"depth"`` (optional): ``float32`` HxW metres, ``0`` = missing;
- ``"name"``: a string identifying the sample.

A missing target is an absent key (or ``None``). :func:`collate` turns a list of
samples into a batch: ``"image"`` float32 ``(N, 3, H, W)`` normalised,
``"segmentation"`` int64 ``(N, H, W)`` filled with 255 where missing, ``"depth"``
float32 ``(N, 1, H, W)`` filled with 0 where missing, ``"has_segmentation"`` and
``"has_depth"`` bool ``(N,)``, and ``"name"`` a list of strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..model.config import IMAGENET_MEAN, IMAGENET_STD
from ..inference.pipeline import normalize

IGNORE_INDEX = 255
TARGETS: tuple[str, ...] = ("segmentation", "depth")

Sample = dict[str, Any]


def has_target(sample: Mapping[str, Any], key: str) -> bool:
    """Whether ``sample`` carries target ``key`` (present and not None)."""
    return sample.get(key) is not None


def validate_sample(sample: Mapping[str, Any]) -> None:
    """Raise :class:`InputError` naming the sample when it breaks the protocol."""
    name = sample.get("name", "?")
    image = sample.get("image")
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"{name}: 'image' must be an RGB uint8 HxWx3 array, "
                         f"got {getattr(image, 'shape', type(image).__name__)}")
    hw = image.shape[:2]
    seg = sample.get("segmentation")
    if seg is not None and (not isinstance(seg, np.ndarray) or seg.shape != hw):
        raise InputError(f"{name}: 'segmentation' must be an HxW array of the image size {hw}, "
                         f"got {getattr(seg, 'shape', type(seg).__name__)}")
    depth = sample.get("depth")
    if depth is not None and (not isinstance(depth, np.ndarray) or depth.shape != hw):
        raise InputError(f"{name}: 'depth' must be an HxW array of the image size {hw}, "
                         f"got {getattr(depth, 'shape', type(depth).__name__)}")


def _image_tensor(image: Any, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        return image.float()
    return torch.from_numpy(normalize(image, mean, std))


def collate(samples: Sequence[Mapping[str, Any]], mean: Sequence[float] = IMAGENET_MEAN,
            std: Sequence[float] = IMAGENET_STD) -> dict[str, Any]:
    """Stack samples into a batch; missing targets are filled with 255 / 0 and flagged.

    Images may be uint8 HxWx3 arrays (normalised here with ``mean``/``std``) or
    already-normalised ``(3, H, W)`` float tensors.
    """
    if not samples:
        raise InputError("cannot collate an empty batch")
    images = [_image_tensor(s["image"], mean, std) for s in samples]
    sizes = {tuple(im.shape[-2:]) for im in images}
    if len(sizes) != 1:
        raise InputError(f"images in one batch differ in size {sorted(sizes)}; crop or resize them "
                         "to one size (set crop_size in the training config)")
    h, w = sizes.pop()
    n = len(samples)
    seg = torch.full((n, h, w), IGNORE_INDEX, dtype=torch.int64)
    depth = torch.zeros((n, 1, h, w), dtype=torch.float32)
    has_seg = torch.zeros(n, dtype=torch.bool)
    has_depth = torch.zeros(n, dtype=torch.bool)
    for i, s in enumerate(samples):
        if has_target(s, "segmentation"):
            seg[i] = torch.as_tensor(np.asarray(s["segmentation"]).astype(np.int64))
            has_seg[i] = True
        if has_target(s, "depth"):
            d = torch.as_tensor(np.asarray(s["depth"], dtype=np.float32))
            depth[i, 0] = torch.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)
            has_depth[i] = True
    batch: dict[str, Any] = {
        "image": torch.stack(images),
        "segmentation": seg,
        "depth": depth,
        "has_segmentation": has_seg,
        "has_depth": has_depth,
        "name": [str(s.get("name", i)) for i, s in enumerate(samples)],
    }
    if any(s.get("video") is not None for s in samples):
        batch["video"] = collate_video(samples, h, w)
    return batch


def _frame(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


def collate_video(samples: Sequence[Mapping[str, Any]], height: int, width: int) -> dict[str, torch.Tensor]:
    """The view-synthesis part of a batch: clean frames in [0, 1] and the cameras.

    ``target`` ``(N, 3, H, W)``, ``neighbours`` ``(N, S, 3, H, W)``, ``intrinsics`` ``(N, 3, 3)``,
    ``offsets`` ``(N, S)`` (the neighbours' frame steps, negative = earlier), ``right``
    ``(N, 3, H, W)`` with ``baseline`` ``(N,)`` (signed metres, 0 = no stereo frame), and
    ``has_video`` ``(N,)``; samples without video are zeros there.
    """
    counts = {len(s["video"]["neighbours"]) for s in samples if s.get("video") is not None}
    if len(counts) != 1:
        raise InputError(f"video samples in one batch have different numbers of neighbours {sorted(counts)}; "
                         "give every video dataset the same offsets")
    n, k = len(samples), counts.pop()
    out = {"target": torch.zeros(n, 3, height, width), "neighbours": torch.zeros(n, k, 3, height, width),
           "intrinsics": torch.eye(3, dtype=torch.float64).repeat(n, 1, 1), "right": torch.zeros(n, 3, height, width),
           "baseline": torch.zeros(n, dtype=torch.float64), "has_video": torch.zeros(n, dtype=torch.bool),
           "offsets": torch.ones(n, k, dtype=torch.long)}
    for i, s in enumerate(samples):
        video = s.get("video")
        if video is None:
            continue
        out["target"][i] = _frame(video.get("target", s["image"]))
        for j, frame in enumerate(video["neighbours"]):
            out["neighbours"][i, j] = _frame(frame)
        out["intrinsics"][i] = torch.as_tensor(np.asarray(video["intrinsics"], np.float64))
        out["offsets"][i] = torch.as_tensor(list(video.get("offsets") or [1] * k), dtype=torch.long)
        if video.get("right") is not None:
            out["right"][i] = _frame(video["right"])
            out["baseline"][i] = float(video["baseline"])
        out["has_video"][i] = True
    return out
