"""Joint transforms: one geometric change applied identically to image, labels and depth.

Each transform is a callable ``t(sample, rng) -> sample`` on protocol samples (see
:mod:`hydranet.data.sample`), drawing its randomness only from the
``numpy.random.Generator`` it is given, so a seeded pipeline is reproducible
whatever process or worker runs it. Labels and depth are resized with nearest
neighbour so class ids stay ids and sparse LiDAR depth never blends with holes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from .sample import IGNORE_INDEX, Sample, has_target
from .corruptions import corrupt, expand
from .weather import WEATHER_KINDS, apply_weather


class Transform(Protocol):
    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample: ...


def _video_frames(sample: Sample, fn: Any) -> Sample:
    """``sample`` with ``fn`` applied to every frame of its ``video`` part (view-synthesis samples).

    The video part keeps the frames clean for the photometric loss (``target``, the
    ``neighbours``, the stereo ``right``): geometric transforms reach them, colour, weather
    and corruptions change only the network's input ``image``.
    """
    video = sample.get("video")
    if video is None:
        return sample
    out = dict(video)
    out["target"] = fn(video.get("target", sample["image"]))
    out["neighbours"] = [fn(x) for x in video["neighbours"]]
    if video.get("right") is not None:
        out["right"] = fn(video["right"])
    return {**sample, "video": out}


def _video_camera(sample: Sample, scale: tuple[float, float] = (1.0, 1.0), shift: tuple[float, float] = (0.0, 0.0),
                  flip_width: int | None = None) -> Sample:
    """The video part's camera after a resize by ``scale`` (x, y), a crop by ``shift`` or a mirror."""
    video = sample.get("video")
    if video is None:
        return sample
    k = np.array(video["intrinsics"], np.float64)
    sx, sy = scale
    k[0, 0] *= sx
    k[1, 1] *= sy
    k[0, 2] = (k[0, 2] + 0.5) * sx - 0.5 - shift[0]
    k[1, 2] = (k[1, 2] + 0.5) * sy - 0.5 - shift[1]
    out = {**video, "intrinsics": k}
    if flip_width is not None:
        k[0, 2] = flip_width - 1 - k[0, 2]
        if out.get("baseline") is not None:
            out["baseline"] = -float(out["baseline"])  # the mirror puts the other camera on the left
    return {**sample, "video": out}


def _resize_sample(sample: Sample, height: int, width: int) -> Sample:
    out = dict(sample)
    out["image"] = cv2.resize(sample["image"], (width, height), interpolation=cv2.INTER_LINEAR)
    if has_target(sample, "segmentation"):
        out["segmentation"] = cv2.resize(sample["segmentation"], (width, height),
                                         interpolation=cv2.INTER_NEAREST)
    if has_target(sample, "depth"):
        out["depth"] = cv2.resize(sample["depth"], (width, height), interpolation=cv2.INTER_NEAREST)
    if sample.get("focal") is not None:
        # Resizing by s makes the focal length in pixels s times longer.
        out["focal"] = float(sample["focal"]) * width / sample["image"].shape[1]
    if sample.get("video") is not None:
        h0, w0 = sample["image"].shape[:2]
        out = _video_frames(out, lambda x: cv2.resize(x, (width, height), interpolation=cv2.INTER_AREA
                                                      if width < w0 else cv2.INTER_LINEAR))
        out = _video_camera(out, scale=(width / w0, height / h0))
    return out


@dataclass
class Compose:
    transforms: Sequence[Any]

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample


@dataclass
class Resize:
    """Resize to a fixed ``(height, width)``."""

    height: int
    width: int

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        return _resize_sample(sample, self.height, self.width)


@dataclass
class ToCanonicalScale:
    """Resize a sample that states its focal length so that it becomes ``focal`` pixels.

    A camera-aware network runs at that scale (``Predictor`` resizes every image by
    ``canonical_focal / fx``); fine-tuning on frames at the same scale teaches what inference
    will ask. Samples without a focal length are left alone.
    """

    focal: float

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if sample.get("focal") is None:
            return sample
        s = self.focal / float(sample["focal"])
        h, w = sample["image"].shape[:2]
        size = (max(1, int(round(h * s))), max(1, int(round(w * s))))
        return sample if size == (h, w) else _resize_sample(sample, *size)


@dataclass
class RandomScale:
    """Rescale by a factor drawn uniformly from ``[low, high]``.

    By default depth values are kept (the reference recipe's convention). With
    ``scale_depth`` they are divided by the factor actually applied: for a network that
    assumes one focal length, an image enlarged by ``s`` shows the scene as if it were
    ``s`` times closer. Keeping the values instead teaches a depth that depends on the mix
    of scales, and the network is then biased at the native size. Depths beyond
    ``max_depth`` after scaling become missing (0).
    """

    low: float = 0.5
    high: float = 2.0
    scale_depth: bool = False
    max_depth: float | None = None

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        s = float(rng.uniform(self.low, self.high))
        h, w = sample["image"].shape[:2]
        out = _resize_sample(sample, max(1, int(round(h * s))), max(1, int(round(w * s))))
        if self.scale_depth and has_target(out, "depth"):
            applied = out["image"].shape[0] / h  # the rounded size's factor, not the drawn one
            depth = out["depth"] / np.float32(applied)
            if self.max_depth is not None:
                depth = np.where(depth <= self.max_depth, depth, np.float32(0.0))
            out["depth"] = depth.astype(np.float32)
        return out


@dataclass
class AssumeFocal:
    """Give a sample that states no focal length (``sample["focal"]``, pixels) this one.

    Datasets without a camera are taken to be at the canonical focal length at their native
    size, which makes :class:`CanonicalDepth` after a :class:`RandomScale` the same as
    ``scale_depth``.
    """

    focal: float

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if sample.get("focal") is not None:
            return sample
        return {**sample, "focal": float(self.focal)}


@dataclass
class CanonicalDepth:
    """Depth as a camera of focal length ``focal`` would need it: ``depth * focal / sample focal``.

    A network sees only pixels, so the same scene through a longer lens looks nearer; training
    every image for one canonical focal length (and rescaling at inference by the real camera)
    makes its metric depth hold across cameras. Depth beyond ``max_depth`` becomes missing.
    """

    focal: float
    max_depth: float | None = None

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if not has_target(sample, "depth") or sample.get("focal") is None:
            return sample
        factor = np.float32(self.focal / float(sample["focal"]))
        depth = sample["depth"] * factor
        if self.max_depth is not None:
            depth = np.where(depth <= self.max_depth, depth, np.float32(0.0))
        return {**sample, "depth": depth.astype(np.float32)}


@dataclass
class RandomCrop:
    """Crop ``(height, width)`` at a random position; smaller images are padded
    (image 0, labels 255 = ignore, depth 0 = missing)."""

    height: int
    width: int

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        h, w = sample["image"].shape[:2]
        ph, pw = max(self.height - h, 0), max(self.width - w, 0)
        out = dict(sample)
        if ph or pw:
            pad = ((0, ph), (0, pw))
            out = _video_frames(out, lambda x: np.pad(x, pad + ((0, 0),), mode="edge"))
            out["image"] = np.pad(sample["image"], pad + ((0, 0),))
            if has_target(sample, "segmentation"):
                out["segmentation"] = np.pad(sample["segmentation"], pad, constant_values=IGNORE_INDEX)
            if has_target(sample, "depth"):
                out["depth"] = np.pad(sample["depth"], pad)
            h, w = h + ph, w + pw
        y = int(rng.integers(0, h - self.height + 1))
        x = int(rng.integers(0, w - self.width + 1))
        window = (slice(y, y + self.height), slice(x, x + self.width))
        for key in ("image", "segmentation", "depth"):
            if has_target(out, key):
                out[key] = np.ascontiguousarray(out[key][window])
        out = _video_frames(out, lambda a: np.ascontiguousarray(a[window]))
        return _video_camera(out, shift=(x, y))


@dataclass
class CenterCrop:
    height: int
    width: int

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        h, w = sample["image"].shape[:2]
        y, x = max((h - self.height) // 2, 0), max((w - self.width) // 2, 0)
        out = dict(sample)
        for key in ("image", "segmentation", "depth"):
            if has_target(out, key):
                out[key] = np.ascontiguousarray(out[key][y:y + self.height, x:x + self.width])
        out = _video_frames(out, lambda a: np.ascontiguousarray(a[y:y + self.height, x:x + self.width]))
        return _video_camera(out, shift=(x, y))


@dataclass
class HorizontalFlip:
    p: float = 0.5

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        out = dict(sample)
        for key in ("image", "segmentation", "depth"):
            if has_target(out, key):
                out[key] = np.ascontiguousarray(out[key][:, ::-1])
        out = _video_frames(out, lambda a: np.ascontiguousarray(a[:, ::-1]))
        return _video_camera(out, flip_width=sample["image"].shape[1])


@dataclass
class ColorJitter:
    """Random brightness, contrast and saturation factors in ``[1 - x, 1 + x]`` (image only)."""

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        im = sample["image"].astype(np.float32)
        b = 1 + float(rng.uniform(-self.brightness, self.brightness))
        c = 1 + float(rng.uniform(-self.contrast, self.contrast))
        s = 1 + float(rng.uniform(-self.saturation, self.saturation))
        im = im * b
        im = (im - im.mean()) * c + im.mean()
        grey = im @ np.array([0.299, 0.587, 0.114], np.float32)
        im = (im - grey[..., None]) * s + grey[..., None]
        out = dict(sample)
        out["image"] = np.clip(np.rint(im), 0, 255).astype(np.uint8)
        return out


@dataclass
class RandomWeather:
    """With probability ``p``, one weather kind at a random severity (fog uses the sample's depth)."""

    p: float = 0.0
    kinds: Sequence[str] = field(default_factory=lambda: list(WEATHER_KINDS))
    severity: tuple[int, int] = (1, 5)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if self.p <= 0 or rng.random() >= self.p:
            return sample
        kind = str(self.kinds[int(rng.integers(0, len(self.kinds)))])
        severity = int(rng.integers(self.severity[0], self.severity[1] + 1))
        out = dict(sample)
        out["image"] = apply_weather(sample["image"], kind, severity, depth=sample.get("depth"), rng=rng)
        return out


@dataclass
class RandomCorruption:
    """With probability ``p``, one of ``names`` (:mod:`hydranet.data.corruptions`: ImageNet-C,
    RoboDepth's, hydranet's weather) at a severity drawn from ``severity`` = [low, high], on the
    image only (labels and depth untouched). Everything is drawn from the sample's ``rng``: the
    corruption, the severity and the seed of the corruption's own randomness."""

    p: float = 0.0
    names: Sequence[str] = ()
    severity: tuple[int, int] = (1, 5)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if self.p <= 0 or not self.names or rng.random() >= self.p:
            return sample
        name = str(self.names[int(rng.integers(0, len(self.names)))])
        severity = int(rng.integers(self.severity[0], self.severity[1] + 1))
        seed = int(rng.integers(0, 2**32))
        out = dict(sample)
        out["image"] = corrupt(sample["image"], name, severity, seed=seed, depth=sample.get("depth"))
        return out


def training_transform(crop_size: Sequence[int] | None = None, scale: Sequence[float] | None = (0.5, 2.0),
                       flip: bool = True, color_jitter: float = 0.0, weather_p: float = 0.0,
                       weather_kinds: Sequence[str] | None = None, resize: Sequence[int] | None = None,
                       weather_severity: Sequence[int] = (1, 5), scale_depth: bool = False,
                       max_depth: float | None = None, canonical_focal: float | None = None,
                       corruptions: str | Sequence[str] | None = None, corruption_p: float = 0.0,
                       corruption_severity: Sequence[int] = (1, 5), canonical_scale: bool = False) -> Compose:
    """The usual training pipeline: [resize], scale, crop, flip, colour jitter, weather, corruption.

    ``scale_depth`` divides depth by the random scale factor (see :class:`RandomScale`).
    ``canonical_focal`` turns every depth target into that focal length's (see
    :class:`CanonicalDepth`; it subsumes ``scale_depth``). ``corruptions`` (names or groups such
    as ``standard``) with ``corruption_p`` adds :class:`RandomCorruption`. ``canonical_scale``
    first resizes samples with a focal length to ``canonical_focal`` (:class:`ToCanonicalScale`).
    """
    ts: list[Any] = []
    if canonical_scale:
        if not canonical_focal:
            raise ValueError("canonical_scale needs the model's canonical_focal")
        ts.append(ToCanonicalScale(float(canonical_focal)))
    if canonical_focal:
        ts.append(AssumeFocal(float(canonical_focal)))
        scale_depth = False
    if resize:
        ts.append(Resize(int(resize[0]), int(resize[1])))
    if scale:
        ts.append(RandomScale(float(scale[0]), float(scale[1]), scale_depth, max_depth))
    if crop_size:
        ts.append(RandomCrop(int(crop_size[0]), int(crop_size[1])))
    if flip:
        ts.append(HorizontalFlip(0.5))
    if color_jitter:
        ts.append(ColorJitter(color_jitter, color_jitter, color_jitter))
    if weather_p:
        ts.append(RandomWeather(weather_p, list(weather_kinds or WEATHER_KINDS),
                                (int(weather_severity[0]), int(weather_severity[1]))))
    if corruption_p and corruptions:
        ts.append(RandomCorruption(float(corruption_p), expand(corruptions),
                                   (int(corruption_severity[0]), int(corruption_severity[1]))))
    if canonical_focal:
        ts.append(CanonicalDepth(float(canonical_focal), max_depth))
    return Compose(ts)
