"""Calibration and check images: a folder of the user's images, or generated street-like scenes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..inference.pipeline import normalize
from ..errors import InputError
from ..model import ModelConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` (sorted); an error naming the folder when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; pass a folder of calibration images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files


def fit_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to cover ``size`` (H, W) keeping its aspect ratio, then crop the centre."""
    import cv2

    h, w = size
    scale = max(h / image.shape[0], w / image.shape[1])
    nh, nw = max(h, round(image.shape[0] * scale)), max(w, round(image.shape[1] * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (nh - h) // 2, (nw - w) // 2
    return np.ascontiguousarray(resized[top:top + h, left:left + w])


def load_images(folder: str | Path, count: int, size: tuple[int, int] | None) -> list[np.ndarray]:
    """Up to ``count`` RGB uint8 images spread evenly over ``folder``, fitted to ``size`` if given.

    Unreadable files are skipped with a warning on stderr; only a folder with no readable
    image is an error.
    """
    from PIL import Image, UnidentifiedImageError

    files = list_images(folder)
    if count < len(files):
        picks = np.linspace(0, len(files) - 1, count).round().astype(int)
        files = [files[i] for i in sorted(set(picks.tolist()))]
    images = []
    for path in files:
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            print(f"hydranet: warning: {path}: skipped, not a readable image ({exc})", file=sys.stderr)
            continue
        images.append(fit_image(rgb, size) if size else rgb)
    if not images:
        raise InputError(f"{folder}: none of its images could be read")
    return images


def street_scene(size: tuple[int, int], seed: int) -> np.ndarray:
    """A generated road scene (sky, buildings, road with lane marks, cars, texture), RGB uint8.

    Not realistic, but with the statistics calibration needs (large smooth regions,
    edges, shadows and noise) rather than white noise, which misleads INT8 ranges.
    """
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    img = np.zeros((h, w, 3), np.float32)
    horizon = int(h * rng.uniform(0.35, 0.55))
    sky_top, sky_bottom = rng.uniform([60, 110, 170], [140, 180, 250]), rng.uniform([170, 190, 200], [230, 235, 245])
    t = np.linspace(0, 1, horizon)[:, None, None]
    img[:horizon] = sky_top * (1 - t) + sky_bottom * t
    x = 0
    while x < w:  # buildings and trees along the horizon
        bw = int(rng.uniform(0.05, 0.25) * w)
        top = int(horizon * rng.uniform(0.05, 0.8))
        colour = rng.uniform(30, 200, 3) if rng.random() < 0.7 else rng.uniform([20, 60, 20], [70, 140, 60])
        img[top:horizon + 1, x:x + bw] = colour
        for _ in range(int(rng.integers(0, 8))):  # windows
            wy, wx = int(rng.uniform(top, horizon)), int(rng.uniform(x, x + bw))
            img[wy:wy + max(2, h // 40), wx:wx + max(2, w // 80)] = colour * rng.uniform(0.4, 0.8)
        x += bw
    road = rng.uniform(60, 120)
    img[horizon:] = np.linspace(road * 0.8, road * 1.1, h - horizon)[:, None, None]
    pts = np.array([[w * rng.uniform(0.4, 0.48), horizon], [w * rng.uniform(0.52, 0.6), horizon],
                    [w, h], [0, h]], np.int32)
    pavement = np.zeros((h, w), np.uint8)
    cv2.fillPoly(pavement, [pts], 1)
    img[(pavement == 0) & (np.arange(h)[:, None] > horizon)] = rng.uniform(110, 170)
    for k in range(int(rng.integers(3, 8))):  # dashed lane mark towards the vanishing point
        a, b = k / 8, (k + 0.5) / 8
        y0, y1 = int(horizon + (h - horizon) * a), int(horizon + (h - horizon) * b)
        cv2.line(img, (w // 2, y0), (w // 2, y1), (235, 235, 225), max(1, int(1 + 6 * b)))
    for _ in range(int(rng.integers(1, 5))):  # cars: boxes with a shadow and windows
        cy = int(rng.uniform(horizon + 0.1 * (h - horizon), h * 0.95))
        scale = (cy - horizon) / max(1, h - horizon)
        cw, ch = int(w * 0.25 * scale) + 4, int(h * 0.25 * scale) + 3
        cx = int(rng.uniform(0, max(1, w - cw)))
        img[cy:cy + max(1, ch // 6), cx:cx + cw] *= 0.4
        body = rng.uniform(20, 230, 3)
        img[cy - ch:cy, cx:cx + cw] = body
        img[cy - ch:cy - ch // 2, cx + cw // 6:cx + cw - cw // 6] = body * 0.35
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    img *= rng.uniform(0.6, 1.2)  # exposure
    img += rng.normal(0, rng.uniform(2, 8), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def generated_images(count: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """``count`` generated street scenes of ``size``, deterministic by ``seed``."""
    return [street_scene(size, seed * 100_003 + i) for i in range(count)]


def to_batches(images: Sequence[np.ndarray], config: ModelConfig) -> list[np.ndarray]:
    """Each image as a normalised ``(1, 3, H, W)`` float32 array (the model's input)."""
    return [normalize(im, config.mean, config.std)[None] for im in images]


def calibration_batches(config: ModelConfig, folder: str | Path | None = None, count: int = 32,
                        size: tuple[int, int] = (192, 640), seed: int = 0) -> list[np.ndarray]:
    """Normalised calibration inputs: images from ``folder`` fitted to ``size``, or generated ones."""
    images = load_images(folder, count, size) if folder else generated_images(count, size, seed)
    return to_batches(images, config)


def resize_batches(batches: Sequence[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    """Normalised ``(N, 3, h, w)`` inputs resized (bilinear) to ``size``, for per-size calibration."""
    import cv2

    h, w = size
    out = []
    for b in batches:
        if b.shape[2:] == (h, w):
            out.append(b)
            continue
        items = [cv2.resize(np.ascontiguousarray(item.transpose(1, 2, 0)), (w, h), interpolation=cv2.INTER_LINEAR)
                 for item in b]
        out.append(np.ascontiguousarray(np.stack(items).transpose(0, 3, 1, 2), dtype=np.float32))
    return out


# Aspect ratios the any-size calibration covers: 4:3 (CamVid, phones), 16:9 (dash cams,
# nuScenes) and 3.3:1 (KITTI).
CALIBRATION_ASPECTS: tuple[float, ...] = (4 / 3, 16 / 9, 3.3)


def any_size_calibration_sizes(config: ModelConfig) -> list[tuple[int, int]]:
    """The input sizes to calibrate a graph that takes any size at.

    Camera-aware weights see every image resized to their canonical camera, so they get the
    sizes their input plan gives 4:3, 16:9 and 3.3:1 frames at the assumed field of view
    (the bundled model: 360x480, 270x480, 145x480); other weights 192x640.
    """
    if config.canonical_focal is None:
        return [(192, 640)]
    from ..inference.pipeline import plan_input

    return [plan_input(config, (round(1000 / aspect), 1000))[0] for aspect in CALIBRATION_ASPECTS]


class CalibrationSource:
    """Calibration inputs on demand, at the size a (possibly size-specific) graph needs.

    ``spec``: a list of normalised ``(1, 3, H, W)`` arrays, a folder of images, or None for
    generated street scenes. ``sizes`` are used when the graph accepts any size (default:
    :func:`any_size_calibration_sizes`): generated scenes are shared out among them, a
    folder's images are fitted to the first.
    """

    def __init__(self, config: ModelConfig, spec: str | Path | Sequence[np.ndarray] | None,
                 count: int = 32, sizes: Sequence[tuple[int, int]] | None = None) -> None:
        self.config, self.spec, self.count = config, spec, count
        self.sizes = [tuple(s) for s in sizes] if sizes else any_size_calibration_sizes(config)
        self._cache: dict[tuple[int, int] | None, list[np.ndarray]] = {}

    def digest(self, size: tuple[int, int] | None = None) -> str:
        """A key for the inputs :meth:`batches` gives at ``size``, cheap to compute.

        Generated scenes are keyed by count, size and the generator's code; a folder by its
        files' names, sizes and times; given arrays by their bytes.
        """
        import hashlib
        import inspect

        from .cache import arrays_digest

        if isinstance(self.spec, (list, tuple)):
            return arrays_digest(self.batches(size))
        h = hashlib.sha256(f"{self.count}:{size or self.sizes}:{self.config.mean}:{self.config.std}".encode())
        if self.spec is None:
            h.update(inspect.getsource(street_scene).encode())
        else:
            for f in list_images(self.spec)[: self.count * 4]:
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()

    def batches(self, size: tuple[int, int] | None = None) -> list[np.ndarray]:
        """The calibration inputs at ``size``, or for a graph that takes any size (None)."""
        if isinstance(self.spec, (list, tuple)):
            return list(self.spec) if size is None else resize_batches(self.spec, size)
        if size not in self._cache:
            if size is not None or self.spec is not None:
                self._cache[size] = calibration_batches(self.config, self.spec, self.count, size or self.sizes[0])
            else:  # generated scenes, shared out among the sizes, different scenes at each
                n = len(self.sizes)
                counts = [self.count // n + (i < self.count % n) for i in range(n)]
                self._cache[None] = [batch for i, (s, c) in enumerate(zip(self.sizes, counts))
                                     for batch in calibration_batches(self.config, None, c, s, seed=i)]
        return self._cache[size]
