"""Weather corruptions for augmentation and robustness evaluation: rain, fog, night, low light, glare.

Every function is deterministic given its ``numpy.random.Generator`` and works on
RGB ``uint8`` HxWx3 images. Severity runs from 1 (mild) to 5 (severe), as in the
ImageNet-C / Cityscapes-C convention.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..errors import InputError

WEATHER_KINDS: tuple[str, ...] = ("rain", "fog", "night", "lowlight", "glare")

# Fog extinction coefficient per metre; meteorological visibility is about 3 / beta
# (300 m, 150 m, 75 m, 40 m, 20 m).
_FOG_BETA = (0.01, 0.02, 0.04, 0.075, 0.15)
_FOG_AIRLIGHT = (0.80, 0.82, 0.85, 0.88, 0.90)


def _check(image: np.ndarray, severity: int) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", type(image).__name__)
        raise InputError(f"weather needs an RGB uint8 HxWx3 image, got {shape}")
    if not 1 <= int(severity) <= 5:
        raise InputError(f"weather severity must be 1..5, got {severity}")


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def proxy_depth(height: int, width: int, near: float = 2.0, far: float = 120.0,
                horizon: float = 0.45) -> np.ndarray:
    """A depth stand-in from the row position of a forward-looking camera (far at the top).

    Depth falls like a ground plane, ``~ 1 / (y - horizon)``, below ``horizon`` (a
    fraction of the height) down to ``near`` at the bottom, and rises smoothly to
    ``far`` above it (a softplus instead of a hard step, so fog has no seam).
    """
    y = (np.arange(height, dtype=np.float32) + 0.5) / height
    soft = 0.08
    below = soft * np.log1p(np.exp((y - horizon) / soft))
    ground = near * (1.0 - horizon) / np.maximum(below, 1e-6)
    column = np.clip(ground, near, far).astype(np.float32)
    return np.repeat(column[:, None], width, axis=1)


def fog(image: np.ndarray, severity: int, depth: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Koschmieder's law ``I = J t + A (1 - t)``, ``t = exp(-beta d)``: thicker with distance."""
    h, w = image.shape[:2]
    if depth is None:
        d = proxy_depth(h, w)
    else:
        d = np.asarray(depth, dtype=np.float32)
        if d.shape != (h, w):
            raise InputError(f"fog depth has shape {d.shape}, the image is {h}x{w}")
        # Missing depth (0) is treated as far away, which is what it usually is (sky).
        d = np.where(np.isfinite(d) & (d > 0), d, 120.0).astype(np.float32)
    beta = _FOG_BETA[severity - 1] * float(rng.uniform(0.85, 1.15))
    airlight = _FOG_AIRLIGHT[severity - 1] + float(rng.uniform(-0.03, 0.03))
    # Low-frequency density variation so the fog is not a perfect function of depth.
    noise = rng.standard_normal((max(h // 32, 2), max(w // 32, 2))).astype(np.float32)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    t = np.exp(-beta * d * (1.0 + 0.15 * noise))[..., None]
    j = image.astype(np.float32) / 255.0
    return _to_uint8(j * t + airlight * (1.0 - t))


def rain(image: np.ndarray, severity: int, depth: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Slanted motion-blurred streaks, a little haze and a darker, lower-contrast scene."""
    h, w = image.shape[:2]
    s = severity
    density = (0.0015, 0.003, 0.005, 0.008, 0.012)[s - 1]
    length = max(4, int(round(h * (0.04 + 0.015 * s))))
    angle = float(rng.uniform(-20, 20))
    count = int(density * h * w / 10) + 1
    streaks = np.zeros((h, w), np.float32)
    xs = rng.integers(0, w, count)
    ys = rng.integers(0, h, count)
    vals = rng.uniform(0.5, 1.0, count).astype(np.float32)
    streaks[ys, xs] = vals
    # A line kernel at the rain angle turns dots into streaks.
    k = np.zeros((length, length), np.float32)
    k[:, length // 2] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    k /= max(k.sum(), 1e-6)
    streaks = cv2.filter2D(streaks, -1, k) * length * 0.6
    streaks = cv2.GaussianBlur(streaks, (3, 3), 0)
    j = image.astype(np.float32) / 255.0
    dim = 1.0 - 0.06 * s
    haze = 0.04 * s
    out = j * dim * (1 - haze) + haze * 0.7
    out = cv2.GaussianBlur(out, (0, 0), 0.3 + 0.25 * s) if s >= 3 else out
    streak = np.clip(streaks, 0, 1)[..., None] * (0.55 + 0.05 * s)
    return _to_uint8(out * (1 - streak) + 0.85 * streak)


def night(image: np.ndarray, severity: int, depth: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Dark, blue-shifted, gamma-compressed scene with sensor noise (a night drive)."""
    s = severity
    j = image.astype(np.float32) / 255.0
    gamma = 1.4 + 0.35 * s
    gain = (0.55, 0.42, 0.32, 0.24, 0.17)[s - 1] * float(rng.uniform(0.9, 1.1))
    out = np.power(j, gamma) * gain
    out = out * np.array([0.85, 0.92, 1.15], np.float32)  # scotopic blue shift
    sigma = 0.006 + 0.004 * s
    out = out + rng.normal(0.0, sigma, out.shape).astype(np.float32)
    return _to_uint8(out)


def lowlight(image: np.ndarray, severity: int, depth: np.ndarray | None,
             rng: np.random.Generator) -> np.ndarray:
    """Under-exposure with photon (Poisson) and read noise, as an auto-exposed camera at dusk."""
    s = severity
    j = image.astype(np.float32) / 255.0
    gain = (0.6, 0.45, 0.32, 0.22, 0.14)[s - 1]
    photons = (400.0, 200.0, 100.0, 50.0, 25.0)[s - 1]
    lam = np.clip(j * gain, 0, 1) * photons
    shot = rng.poisson(lam).astype(np.float32) / photons
    read = rng.normal(0.0, 0.004 * s, j.shape).astype(np.float32)
    return _to_uint8(shot + read)


def glare(image: np.ndarray, severity: int, depth: np.ndarray | None,
          rng: np.random.Generator) -> np.ndarray:
    """A low sun or oncoming headlight: a bright source, radial bloom and veiling glare."""
    h, w = image.shape[:2]
    s = severity
    cx = float(rng.uniform(0.15, 0.85)) * w
    cy = float(rng.uniform(0.1, 0.5)) * h
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / max(h, w)
    radius = 0.05 + 0.03 * s
    bloom = np.exp(-((r / radius) ** 2)) + 0.35 * np.exp(-r / (radius * 3))
    bloom = np.clip(bloom * (0.45 + 0.12 * s), 0, 1.5)[..., None]
    veil = 0.04 * s  # scattered light lowers contrast everywhere
    tint = np.array([1.0, 0.95, 0.82], np.float32)
    j = image.astype(np.float32) / 255.0
    out = j * (1 - veil) + veil
    out = 1.0 - (1.0 - out) * (1.0 - np.clip(bloom * tint, 0, 1))  # screen blend
    return _to_uint8(out)


_WEATHER: dict[str, Callable[..., np.ndarray]] = {
    "rain": rain, "fog": fog, "night": night, "lowlight": lowlight, "glare": glare,
}


def apply_weather(image: np.ndarray, kind: str, severity: int = 3, depth: np.ndarray | None = None,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Return ``image`` (RGB uint8 HxWx3) under weather ``kind`` at ``severity`` 1..5.

    ``depth`` (metres, 0 = missing) makes fog thicken with distance; without it a
    row-position proxy of a forward-looking camera is used. The result is fully
    determined by ``rng`` (a fixed seed of 0 when omitted).
    """
    if kind not in _WEATHER:
        raise InputError(f"unknown weather {kind!r}; choose from {', '.join(WEATHER_KINDS)}")
    _check(image, severity)
    rng = rng if rng is not None else np.random.default_rng(0)
    return _WEATHER[kind](image, int(severity), depth, rng)
