"""The field's common corruptions by name: ImageNet-C / Cityscapes-C / KITTI-C, plus hydranet's own.

Three families, one call (:func:`corrupt`), one naming scheme:

- **The ImageNet-C set** (Hendrycks & Dietterich, ICLR 2019) as packaged by the PyPI package
  ``imagecorruptions`` (Michaelis et al., 2019), the images behind Cityscapes-C and KITTI-C:
  the 15 ``standard`` corruptions and the 4 ``extra`` ones (the package's "validation"
  corruptions), each ``imagecorruptions.corrupt(image, corruption_name=name, severity=s)``.
  Nothing of the package is copied here; see *Compatibility* below.
- **RoboDepth's additions** for KITTI-C (Kong et al., 2023), which are not in the package:
  ``dark``, ``color_quant`` and ``iso_noise`` (:func:`robodepth_dark`,
  :func:`robodepth_color_quant`, :func:`robodepth_iso_noise`, their definitions in the
  docstrings). RoboDepth's 18 = the 15 standard ones + these 3 (group ``robodepth``).
- **hydranet's depth-aware weather** (:mod:`hydranet.data.weather`), named ``hydranet-rain``,
  ``hydranet-fog``, ``hydranet-night``, ``hydranet-lowlight``, ``hydranet-glare`` so that
  ``fog`` always means ImageNet-C's fog. They are extra conditions, never part of a field
  summary.

Groups (:data:`GROUPS`): ``standard`` (15), ``extra`` (4), ImageNet-C's ``noise`` / ``blur`` /
``weather`` / ``digital`` (of the 15: weather is snow, frost, fog, brightness; digital is
contrast, elastic_transform, pixelate, jpeg_compression), ``robodepth`` (18), ``hydranet`` (5)
and ``all``.

Seeding: ``imagecorruptions`` draws from NumPy's *global* random state. :func:`corrupt` seeds
it with ``np.random.seed([seed, index, crc32(name), severity])`` for the call and restores the
previous global state afterwards, so image ``index`` under ``(name, severity)`` is the same
picture in every run and process, and nothing else's random stream moves. RoboDepth's
additions draw from ``np.random.default_rng([seed, index, crc32(name), severity])``;
hydranet's weather keeps its own convention, ``np.random.default_rng([seed, index])`` (as
``hydranet eval`` always used).

Sizes: the package refuses images under 32 px a side; smaller ones are mirrored out to 32
(``np.pad(mode="symmetric")``) and the result is cropped back. Every result has the input's
shape and is uint8: the package's own float-to-uint8 conversion (``np.uint8``, truncation)
is kept by going through ``imagecorruptions.corrupt``.

Compatibility of ``imagecorruptions`` 1.1.2 (2020) with current NumPy / scikit-image /
setuptools, each handled where it bites and no wider (:func:`library`, :func:`_compat`):

1. it imports ``pkg_resources.resource_filename`` (gone from recent setuptools, e.g. 84): a stand-in
   module with only ``resource_filename`` is put in ``sys.modules`` while the package is
   imported and removed again (only when the real one is missing);
2. ``fog`` uses ``np.float_`` (removed in NumPy 2.0): the alias ``np.float_ = np.float64`` is
   set for the duration of a ``fog`` call only;
3. ``gaussian_blur`` and ``glass_blur`` call ``skimage.filters.gaussian(..., multichannel=True)``
   (replaced by ``channel_axis`` in scikit-image, refused by 0.26): the package's own module-level name
   ``gaussian`` is rebound to a function that passes ``channel_axis=-1`` instead (the same
   filter); scikit-image itself is untouched;
4. ``impulse_noise`` calls ``skimage.util.random_noise`` without a seed, which in current
   scikit-image draws from a fresh unseeded ``Generator``, not from the global state, so it
   could not be reproduced: for the call, ``skimage.util.random_noise`` gets ``rng=`` a number
   drawn from the seeded global state;
5. ``scipy.ndimage.interpolation`` (a deprecated alias module) warns on import: silenced
   (warnings during the package's import only).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import os
import sys
import types
import warnings
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from .weather import WEATHER_KINDS, apply_weather

# ImageNet-C's 15, in the package's (and the paper's) order: noise, blur, weather, digital.
STANDARD: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
# The package's 4 "validation" corruptions.
EXTRA: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
LIBRARY: tuple[str, ...] = STANDARD + EXTRA
# RoboDepth (KITTI-C) adds these three to the 15 standard ones.
ROBODEPTH_EXTRA: tuple[str, ...] = ("dark", "color_quant", "iso_noise")
# RoboDepth's 18 in its taxonomy's order (weather & lighting, sensor & movement, data & processing).
ROBODEPTH: tuple[str, ...] = (
    "brightness", "dark", "fog", "frost", "snow", "contrast",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "elastic_transform", "color_quant",
    "gaussian_noise", "impulse_noise", "shot_noise", "iso_noise", "pixelate", "jpeg_compression",
)
HYDRANET_PREFIX = "hydranet-"
HYDRANET: tuple[str, ...] = tuple(HYDRANET_PREFIX + k for k in WEATHER_KINDS)
# Every corruption that has a field benchmark behind it (the summaries' candidates).
FIELD: tuple[str, ...] = LIBRARY + ROBODEPTH_EXTRA
CORRUPTIONS: tuple[str, ...] = FIELD + HYDRANET

GROUPS: dict[str, tuple[str, ...]] = {
    "standard": STANDARD,
    "extra": EXTRA,
    "noise": STANDARD[0:3],
    "blur": STANDARD[3:7],
    "weather": STANDARD[7:11],
    "digital": STANDARD[11:15],
    "robodepth": ROBODEPTH,
    "hydranet": HYDRANET,
    "all": CORRUPTIONS,
}
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
MIN_SIDE = 32  # imagecorruptions refuses smaller images


def valid_names_text() -> str:
    """The one-line list of what may be asked for, for error messages."""
    return (f"groups {', '.join(GROUPS)}; corruptions {', '.join(FIELD)}; "
            f"hydranet's own {', '.join(HYDRANET)}")


def expand(spec: str | Sequence[str] | None) -> list[str]:
    """Corruption names from names and groups (``"standard,hydranet-fog"`` or a list), in
    order, each once. Unknown names are one :class:`InputError` listing the valid ones."""
    if spec is None:
        return []
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    items = [s for s in items if s]
    bad = [s for s in items if s not in GROUPS and s not in CORRUPTIONS]
    if bad:
        hint = ""
        legacy = [b for b in bad if b in WEATHER_KINDS]
        if legacy:
            hint = f" (hydranet's own weather is now {', '.join(HYDRANET_PREFIX + b for b in legacy)})"
        raise InputError(f"unknown corruption(s) {', '.join(bad)}{hint}; choose from {valid_names_text()}")
    out: list[str] = []
    for s in items:
        for name in GROUPS.get(s, (s,)):
            if name not in out:
                out.append(name)
    return out


def is_hydranet(name: str) -> bool:
    return name.startswith(HYDRANET_PREFIX)


def corruption_seed(seed: int, index: int, name: str, severity: int) -> list[int]:
    """The seed words of image ``index`` under ``(name, severity)``: stable across processes
    (CRC-32 of the name, not Python's salted ``hash``), each in ``[0, 2**32)``."""
    return [int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, zlib.crc32(name.encode()), int(severity)]


# --- RoboDepth's additions -------------------------------------------------------------------

# ImageNet-C's gaussian_noise sigmas; RoboDepth scales them for its sensor noise.
_NOISE_SIGMA = (0.08, 0.12, 0.18, 0.26, 0.38)


def _poisson_gaussian(x: np.ndarray, photons: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Shot noise (Poisson with ``photons`` at full scale) then read noise (Gaussian ``sigma``)
    on ``x`` in [0, 1], clipped after each; to uint8 by truncation, as RoboDepth saves it."""
    x = np.clip(rng.poisson(x * photons) / photons, 0.0, 1.0)
    x = np.clip(x + rng.normal(0.0, sigma, x.shape), 0.0, 1.0)
    return (x * 255.0).astype(np.uint8)


def robodepth_darken(image: np.ndarray, severity: int) -> np.ndarray:
    """The deterministic half of :func:`robodepth_dark`: ``((x - min) / (max - min)) ** 2 * c``
    with ``x = image / 255`` (min and max over the whole image) and ``c`` = 0.6, 0.5, 0.4, 0.3,
    0.2 for severity 1..5 (MATLAB's ``imadjust`` to ``[0, c]`` with gamma 2). Float in [0, c]."""
    c = (0.60, 0.50, 0.40, 0.30, 0.20)[int(severity) - 1]
    x = image.astype(np.float64) / 255.0
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros_like(x)
    return ((x - lo) / (hi - lo)) ** 2 * c


def robodepth_dark(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """RoboDepth's ``dark`` (low light): :func:`robodepth_darken`, then shot noise with
    ``10 * (60, 25, 12, 5, 3)`` photons at full scale and Gaussian read noise of sigma
    ``0.1 * (0.08, 0.12, 0.18, 0.26, 0.38)`` (severity 1..5), clipped to [0, 1] after each,
    uint8 by truncation (RoboDepth's ``corruptions/utils.py`` ``low_light``)."""
    s = int(severity)
    return _poisson_gaussian(robodepth_darken(image, s), 10.0 * (60, 25, 12, 5, 3)[s - 1],
                             0.1 * _NOISE_SIGMA[s - 1], rng)


def robodepth_iso_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """RoboDepth's ``iso_noise``: shot noise with 25 photons at full scale, then Gaussian noise
    of sigma ``0.7 * (0.08, 0.12, 0.18, 0.26, 0.38)`` (severity 1..5), clipped to [0, 1] after
    each, uint8 by truncation."""
    return _poisson_gaussian(image.astype(np.float64) / 255.0, 25.0, 0.7 * _NOISE_SIGMA[int(severity) - 1], rng)


def robodepth_color_quant(image: np.ndarray, severity: int) -> np.ndarray:
    """RoboDepth's ``color_quant``: bit-depth reduction to ``6 - severity`` bits per channel
    (5, 4, 3, 2, 1 bits), keeping the high bits, i.e. ``PIL.ImageOps.posterize(image, bits)``."""
    bits = 6 - int(severity)
    mask = np.uint8((0xFF << (8 - bits)) & 0xFF)
    return np.bitwise_and(image, mask)


# --- imagecorruptions, imported once with its compatibility fixes ----------------------------

def _resource_filename(package: str, resource: str) -> str:
    """``pkg_resources.resource_filename`` for what the package asks: a file beside a module."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(package)
    return os.path.normpath(os.path.join(os.path.dirname(spec.origin), resource))


def _gaussian_channel_axis(gaussian: Any) -> Any:
    """``skimage.filters.gaussian`` that still takes the removed ``multichannel=True``."""

    @functools.wraps(gaussian)
    def call(*args: Any, multichannel: bool | None = None, **kwargs: Any) -> Any:
        if multichannel:
            kwargs.setdefault("channel_axis", -1)
        return gaussian(*args, **kwargs)

    return call


@functools.lru_cache(maxsize=1)
def library() -> types.ModuleType:
    """``imagecorruptions``, imported with fixes 1, 3 and 5 of the module docstring; an
    InputError naming the extra to install when it is missing."""
    if importlib.util.find_spec("imagecorruptions") is None:
        raise InputError("the ImageNet-C corruptions need the package imagecorruptions: "
                         "pip install 'hydranet[robustness]' (or pip install imagecorruptions)")
    stub = None
    if importlib.util.find_spec("pkg_resources") is None:
        stub = types.ModuleType("pkg_resources")
        stub.resource_filename = _resource_filename  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = stub
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the 2020 package's import-time deprecations (scipy, pkg_resources)
            import imagecorruptions
            import imagecorruptions.corruptions as impl
    finally:
        if stub is not None and sys.modules.get("pkg_resources") is stub:
            del sys.modules["pkg_resources"]
    if "multichannel" not in inspect.signature(impl.gaussian).parameters:
        impl.gaussian = _gaussian_channel_axis(impl.gaussian)
    return imagecorruptions


@contextlib.contextmanager
def _compat(name: str) -> Iterator[None]:
    """Fixes 2 and 4 of the module docstring, for the one call that needs them."""
    with contextlib.ExitStack() as stack:
        if name == "fog" and "float_" not in np.__dict__:
            np.float_ = np.float64  # type: ignore[attr-defined]
            stack.callback(lambda: np.__dict__.pop("float_", None))
        if name == "impulse_noise":
            import skimage.util

            original = skimage.util.random_noise
            if "rng" in inspect.signature(original).parameters:
                draw = int(np.random.randint(0, 2**31 - 1))
                skimage.util.random_noise = functools.partial(original, rng=draw)
                stack.callback(setattr, skimage.util, "random_noise", original)
        yield


@contextlib.contextmanager
def seeded_global_numpy(words: Sequence[int]) -> Iterator[None]:
    """``np.random.seed(words)`` for the block, the previous global state restored after."""
    state = np.random.get_state()
    np.random.seed(list(words))
    try:
        yield
    finally:
        np.random.set_state(state)


def _library_corrupt(image: np.ndarray, name: str, severity: int, words: Sequence[int]) -> np.ndarray:
    ic = library()
    h, w = image.shape[:2]
    small = h < MIN_SIDE or w < MIN_SIDE
    x = image
    if small:
        x = np.pad(image, ((0, max(MIN_SIDE - h, 0)), (0, max(MIN_SIDE - w, 0)), (0, 0)), mode="symmetric")
    with seeded_global_numpy(words), _compat(name):
        out = ic.corrupt(np.ascontiguousarray(x), corruption_name=name, severity=int(severity))
    out = np.asarray(out)[:h, :w]
    if out.shape != image.shape:
        raise RuntimeError(f"imagecorruptions {name} returned shape {out.shape} for an image of {image.shape}")
    return np.ascontiguousarray(out, dtype=np.uint8)


def corrupt(image: np.ndarray, name: str, severity: int = 3, *, seed: int = 0, index: int = 0,
            depth: np.ndarray | None = None) -> np.ndarray:
    """``image`` (RGB uint8 HxWx3, any size) under corruption ``name`` at ``severity`` 1..5.

    The result depends only on ``(image, name, severity, seed, index)`` (and ``depth`` for
    ``hydranet-fog``): see the module docstring for the seeding. ``depth`` (metres, 0 = missing)
    is used by hydranet's fog only.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", type(image).__name__)
        raise InputError(f"corruptions need an RGB uint8 HxWx3 image, got {shape}")
    if isinstance(severity, bool) or int(severity) not in SEVERITIES:
        raise InputError(f"corruption severity must be 1..5, got {severity}")
    severity = int(severity)
    if name in HYDRANET:
        return apply_weather(image, name[len(HYDRANET_PREFIX):], severity, depth=depth,
                             rng=np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF]))
    if name not in FIELD:
        raise InputError(f"unknown corruption {name!r}; choose from {valid_names_text()}")
    words = corruption_seed(seed, index, name, severity)
    if name == "color_quant":
        return robodepth_color_quant(image, severity)
    if name == "dark":
        return robodepth_dark(image, severity, np.random.default_rng(words))
    if name == "iso_noise":
        return robodepth_iso_noise(image, severity, np.random.default_rng(words))
    return _library_corrupt(image, name, severity, words)
