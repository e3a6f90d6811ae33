"""Turning images into the network's normalised input, exactly as the reference does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InputError
from ..model.config import IMAGENET_MEAN, IMAGENET_STD


def normalize_image(
    image: np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """``(image / 255 - mean) / std`` in float64, returned as float32 HxWx3 (the reference's order)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise InputError(f"expected an RGB image as an HxWx3 array, got {shape}")
    if image.dtype != np.uint8:
        raise InputError(f"expected a uint8 image (0-255), got dtype {image.dtype}")
    out = (image.astype(np.float64) / 255.0 - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)
    return out.astype(np.float32)


def preprocess(
    image: np.ndarray | Sequence[np.ndarray],
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """RGB uint8 HxWx3 image (or a list of same-size images) to a normalised ``(N, 3, H, W)`` tensor."""
    images = [image] if isinstance(image, np.ndarray) else list(image)
    if not images:
        raise InputError("no images to preprocess")
    arrays = [normalize_image(im, mean, std) for im in images]
    if len({a.shape for a in arrays}) != 1:
        raise InputError("images in one batch must have the same size")
    batch = np.stack(arrays).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(batch))
