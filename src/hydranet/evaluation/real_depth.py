"""Depth on real frames with sparse metric ground truth, with trivial baselines beside the model.

A depth network can look fine on its own numbers and still do no better than a map that
knows nothing about the image. :func:`evaluate_depth_images` therefore scores, on each
image, the model and three maps that ignore the image content, all on **exactly the same
pixels**: those with valid ground truth (``min_depth < gt < max_depth``) where the model's
output is finite and positive. A pixel the model gets wrong by answering NaN, inf or 0 is
dropped for every method, so no method is scored on pixels another one skipped.

Methods (every baseline is median-scaled, as it carries no scale of its own):

- ``model``: the prediction in metres, as it comes (only for metric depth);
- ``model_median``: the prediction times ``median(gt) / median(pred)`` on the scored pixels;
- ``constant``: :func:`constant_baseline`, one value, the median of the ground truth;
- ``row``: :func:`row_profile_baseline`, a depth profile over the image's rows (as a fraction of
  its height) learnt from the *other* images of the set (leave one out): what a model that
  ignores everything but the row would predict;
- ``row_oracle``: :func:`row_oracle_baseline`, the per-row median of the image's own ground
  truth: about the best any map that depends on the row only can do (a bound, not a rival).

:func:`row_flat_baseline` (the flat-ground prior ``1 / (v - cy)``, no fitting) is kept as a
function; on real frames most ground truth lies on objects above the horizon, where it fails.

Errors are those of :func:`hydranet.evaluation.metrics.depth_errors` under the convention
of :class:`~hydranet.evaluation.metrics.DepthMetrics` (scale first, then clip to
``[min_depth, max_depth]``). Overall figures come two ways: ``image_mean`` (the mean over
images of the per-image figures, the Eigen / KITTI convention, each image weighs the same)
and ``pixel_pooled`` (the errors of all scored pixels of all images together, each image's
pixels after its own median scaling: images with denser ground truth weigh more).

``by_distance`` splits the pooled pixels by their true distance (:data:`DISTANCE_BANDS`): per
band the abs rel of every method and the model's median ratio of prediction to truth (below 1:
predicted too near). A model that is right on average can still squeeze its range, answering
too far for near things and too near for far ones; the bands show it where one figure cannot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from .metrics import depth_errors

REAL_DEPTH_KEYS: tuple[str, ...] = ("abs_rel", "sq_rel", "rmse", "delta1")
BASELINES: tuple[str, ...] = ("constant", "row", "row_oracle")
# The baselines a model must beat; row_oracle uses the image's own ground truth per row.
RIVALS: tuple[str, ...] = ("constant", "row")
ROW_BINS = 32
# Edges (metres) of the true-distance bands of ``by_distance``; the last band ends at max_depth.
DISTANCE_BANDS: tuple[float, ...] = (0.0, 10.0, 20.0, 40.0)
METHODS: tuple[str, ...] = ("model", "model_median") + BASELINES
# The nominal camera height of the flat-ground prior; median scaling removes it except for
# which rows near the horizon reach the depth cap (KITTI's camera is 1.65 m above the road).
FLAT_CAMERA_HEIGHT = 1.65

# image uint8 HxWx3, 3x3 K or None -> depth HxW metres at the image's size
DepthPredictFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def scored_pixels(pred: np.ndarray, gt: np.ndarray, min_depth: float = 1e-3,
                  max_depth: float | None = 80.0) -> np.ndarray:
    """The pixels every method is scored on: valid ground truth within the depth range where
    the prediction is finite and positive (bool HxW)."""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise InputError(f"depth prediction {pred.shape} and ground truth {gt.shape} differ; "
                         "predict at the image's size")
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(gt) & (gt > min_depth) & np.isfinite(pred) & (pred > 0)
        if max_depth is not None:
            mask &= gt < max_depth
    return mask


def median_scale(pred_values: np.ndarray, gt_values: np.ndarray) -> float:
    """``median(gt) / median(pred)`` over matched pixel values (1 when the prediction's median is 0)."""
    med = float(np.median(pred_values))
    return float(np.median(gt_values)) / med if med > 0 else 1.0


def constant_baseline(gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A constant map: the median of the ground truth on the ``mask`` pixels, everywhere.

    It is its own median-scaled version (scaling by ``median(gt) / median(map)`` is 1): the
    error of an answer that knows only the typical depth of the image.
    """
    if not mask.any():
        raise InputError("constant baseline: no scored pixels")
    return np.full(gt.shape, float(np.median(gt[mask])), np.float64)


def row_flat_baseline(shape: tuple[int, int], intrinsics: np.ndarray | None = None,
                      max_depth: float = 80.0, camera_height: float = FLAT_CAMERA_HEIGHT) -> np.ndarray:
    """The flat-ground prior: what a camera looking level over an empty flat road would see.

    Row ``v`` (pixel centres at integer rows, as in ``K``) below the horizon row ``cy`` shows
    the road at ``fy * camera_height / (v - cy)`` metres, i.e. depth is proportional to
    ``1 / (v - cy)``; rows at or above the horizon, and rows whose road depth would exceed it,
    get the cap ``max_depth``. ``cy`` and ``fy`` come from ``K`` when given, else
    ``cy = H / 2`` and the focal length of a 60-degree horizontal field of view. Nothing is
    fitted; :func:`evaluate_depth_images` median-scales the map like every baseline, which
    removes ``fy * camera_height`` except for which rows reach the cap.
    """
    h, w = int(shape[0]), int(shape[1])
    if intrinsics is not None:
        k = np.asarray(intrinsics, np.float64)
        fy, cy = float(k[1, 1]), float(k[1, 2])
    else:
        from ..inference.camera import focal_of

        fy, cy = focal_of(None, w)[0], h / 2.0
    dv = np.arange(h, dtype=np.float64) - cy
    with np.errstate(divide="ignore"):
        column = np.where(dv > 0, fy * camera_height / np.where(dv > 0, dv, 1.0), np.inf)
    column = np.minimum(column, max_depth)
    return np.repeat(column[:, None], w, axis=1)


def row_oracle_baseline(gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The per-row median of this image's own ground truth on the ``mask`` pixels.

    Rows without a scored pixel take the value interpolated linearly between the nearest rows
    above and below that have one (the nearest one's value beyond the first and last). It
    cheats (it reads the answer), so it bounds what any map depending on the row only can
    reach: the row median minimises the absolute error within each row (the abs-rel optimum
    per row, the ``1 / gt``-weighted median, lies close to it).
    """
    if not mask.any():
        raise InputError("row oracle baseline: no scored pixels")
    h, w = gt.shape
    rows = np.flatnonzero(mask.any(axis=1))
    values = np.array([np.median(gt[r][mask[r]]) for r in rows], np.float64)
    column = np.interp(np.arange(h, dtype=np.float64), rows.astype(np.float64), values)
    return np.repeat(column[:, None], w, axis=1)


def row_profile(gt: np.ndarray, mask: np.ndarray, bins: int = ROW_BINS) -> np.ndarray:
    """``(bins,)`` median of ``gt / median(gt)`` in each band of rows (NaN where a band is empty)."""
    rows = np.nonzero(mask)[0]
    values = gt[mask] / np.median(gt[mask])
    band = np.minimum((rows * bins) // gt.shape[0], bins - 1)
    out = np.full(bins, np.nan)
    for b in np.unique(band):
        out[b] = np.median(values[band == b])
    return out


def row_profile_baseline(shape: tuple[int, int], profiles: Sequence[np.ndarray]) -> np.ndarray:
    """A map that depends on the row only: the median of ``profiles`` (those of other images,
    :func:`row_profile`) per band of rows, empty bands filled from their neighbours."""
    stack = np.asarray(list(profiles), np.float64).reshape(-1, ROW_BINS)
    counts = np.isfinite(stack).sum(axis=0)
    profile = np.full(ROW_BINS, np.nan)
    for b in np.nonzero(counts)[0]:
        column = stack[:, b]
        profile[b] = np.median(column[np.isfinite(column)])
    known = np.isfinite(profile)
    if not known.any():
        profile = np.ones(ROW_BINS)
    else:
        idx = np.arange(ROW_BINS)
        profile = np.interp(idx, idx[known], profile[known])
    h, w = shape
    band = np.minimum((np.arange(h) * ROW_BINS) // h, ROW_BINS - 1)
    return np.repeat(profile[band][:, None], w, axis=1)


def _scored(pred_values: np.ndarray, gt_values: np.ndarray, scale: float, min_depth: float,
            max_depth: float | None) -> tuple[np.ndarray, dict[str, float]]:
    pv = np.clip(pred_values.astype(np.float64) * scale, min_depth,
                 max_depth if max_depth is not None else np.inf)
    errors = depth_errors(pv, gt_values)
    return pv, {k: errors[k] for k in REAL_DEPTH_KEYS}


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def by_distance(pooled: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]], max_depth: float,
                edges: Sequence[float] = DISTANCE_BANDS) -> list[dict[str, Any]]:
    """Per band of true distance ``[lo, hi)`` (the last one up to ``max_depth``): ``pixels``,
    ``abs_rel`` {method: value over the band's pixels}, and ``ratio`` {method: median of
    prediction / truth} for the model's methods.

    ``pooled[method]`` holds each image's (scored prediction, truth) pairs, each image already
    at its own scale (metric for ``model``, median-scaled for the others), as
    :func:`evaluate_depth_images` collects them.
    """
    joined = {m: (np.concatenate([p for p, _ in pairs]), np.concatenate([g for _, g in pairs]))
              for m, pairs in pooled.items() if pairs}
    bounds = [float(e) for e in edges] + [float(max_depth)]
    bands = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi <= lo:
            continue
        band: dict[str, Any] = {"from": lo, "to": hi, "pixels": 0, "abs_rel": {}, "ratio": {}}
        for m, (pv, g) in joined.items():
            sel = (g >= lo) & (g < hi)
            band["pixels"] = int(sel.sum())
            if not sel.any():
                band["abs_rel"][m] = None
                continue
            band["abs_rel"][m] = depth_errors(pv[sel], g[sel])["abs_rel"]
            if m.startswith("model"):
                band["ratio"][m] = float(np.median(pv[sel] / g[sel]))
        bands.append(band)
    return bands


def evaluate_depth_images(predict: DepthPredictFn, dataset: Any, max_depth: float = 80.0,
                          min_depth: float = 1e-3, median_scaling: bool = True,
                          progress: bool = True, max_images: int | None = None) -> dict[str, Any]:
    """Score ``predict`` and the baselines on every image of ``dataset`` that has depth.

    ``predict(image, intrinsics)`` gets the uint8 RGB image and the sample's 3x3 ``K`` (None
    without one) and returns depth in metres at the image's size. ``dataset`` yields protocol
    samples (``image``, ``depth`` in metres with 0 = missing, ``name``, optional
    ``intrinsics``), e.g. :class:`hydranet.data.datasets.DepthFolder`; its ``verify()`` runs
    first when it has one, so a bad depth file stops the run before any prediction.
    ``median_scaling`` also scores the model median-scaled (``model_median``), the figure to
    set beside the baselines (always median-scaled); False scores only its metric output.

    Returns a JSON-serialisable dict: ``images`` (one entry per scored image: ``name``,
    ``size``, ``gt_pixels`` within the range, ``pixels`` scored, ``dropped`` (valid ground
    truth where the prediction was not finite and positive), ``scale`` (the model's median
    scale), ``errors`` {method: {abs_rel, sq_rel, rmse, delta1}}), ``overall`` {``image_mean``,
    ``pixel_pooled``: {method: errors}}, ``by_distance`` (:func:`by_distance` over all scored
    pixels), ``skipped`` (names without depth or scored pixels), ``methods``, ``settings``.
    """
    if hasattr(dataset, "verify"):
        dataset.verify()
    methods = [m for m in METHODS if m != "model_median" or median_scaling]
    n = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    indices: Sequence[int] = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="real depth", unit="image")
    per_image: list[dict[str, Any]] = []
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {m: [] for m in methods}
    skipped: list[str] = []
    # First every prediction, then each image's row profile from the others.
    kept: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, int, bool]] = []
    for i in indices:
        try:
            sample = dataset[i]
        except InputError as exc:  # an unreadable image is skipped, never the end of the run
            import warnings

            warnings.warn(f"{str(exc).split('; ')[0]}; skipped", stacklevel=2)
            skipped.append(str(exc).split(": ")[0])
            continue
        name = str(sample.get("name", i))
        gt = sample.get("depth")
        if gt is None:
            skipped.append(name)
            continue
        gt = np.asarray(gt, np.float64)
        k = sample.get("intrinsics")
        k = None if k is None else np.asarray(k, np.float64)
        pred = np.asarray(predict(sample["image"], k), np.float64)
        if pred.shape != gt.shape:
            raise InputError(f"{name}: prediction has shape {pred.shape} but the depth ground truth "
                             f"{gt.shape}; predict depth HxW at the image's size")
        in_range = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
        mask = scored_pixels(pred, gt, min_depth, max_depth)
        if not mask.any():
            skipped.append(name)
            continue
        kept.append((name, gt, mask, pred, int(in_range.sum()), k is not None))
    row_note = f"median row profile of the other images, {ROW_BINS} bands of rows"
    if len(kept) < 2 and "row" in methods:
        # Each image's row profile comes from the others: with one image there is none, and a
        # flat stand-in would only repeat the constant map.
        methods.remove("row")
        row_note = "not computed: it needs at least two images (each one's profile comes from the others)"
    profiles = [row_profile(gt, mask) for _, gt, mask, _, _, _ in kept]
    for i, (name, gt, mask, pred, in_range_count, has_camera) in enumerate(kept):
        g = gt[mask]
        maps = {
            "constant": constant_baseline(gt, mask),
            "row_oracle": row_oracle_baseline(gt, mask),
        }
        if "row" in methods:
            maps["row"] = row_profile_baseline(gt.shape, profiles[:i] + profiles[i + 1:])
        entry: dict[str, Any] = {"name": name, "size": [int(gt.shape[1]), int(gt.shape[0])],
                                 "gt_pixels": in_range_count, "pixels": int(mask.sum()),
                                 "dropped": in_range_count - int(mask.sum()), "intrinsics": has_camera}
        errors: dict[str, dict[str, float]] = {}
        scales: dict[str, float] = {}
        for m in methods:
            values = pred[mask] if m.startswith("model") else maps[m][mask]
            scale = 1.0 if m == "model" else median_scale(values, g)
            pv, errors[m] = _scored(values, g, scale, min_depth, max_depth)
            pooled[m].append((pv, g))
            scales[m] = scale
        entry["scale"] = median_scale(pred[mask], g)
        entry["baseline_scales"] = {m: scales[m] for m in BASELINES if m in scales}
        entry["errors"] = errors
        per_image.append(entry)
    image_mean: dict[str, dict[str, float | None]] = {}
    pixel_pooled: dict[str, dict[str, float | None]] = {}
    for m in methods:
        if per_image:
            image_mean[m] = {k: _clean(float(np.mean([e["errors"][m][k] for e in per_image])))
                             for k in REAL_DEPTH_KEYS}
            pv = np.concatenate([p for p, _ in pooled[m]])
            g = np.concatenate([q for _, q in pooled[m]])
            pixel_pooled[m] = {k: _clean(v) for k, v in depth_errors(pv, g).items() if k in REAL_DEPTH_KEYS}
        else:
            image_mean[m] = {k: None for k in REAL_DEPTH_KEYS}
            pixel_pooled[m] = {k: None for k in REAL_DEPTH_KEYS}
    return {
        "images": per_image,
        "overall": {"image_mean": image_mean, "pixel_pooled": pixel_pooled,
                    "images": len(per_image), "pixels": int(sum(e["pixels"] for e in per_image)),
                    "without_intrinsics": sum(not e["intrinsics"] for e in per_image)},
        "by_distance": by_distance(pooled, max_depth),
        "skipped": skipped,
        "methods": methods,
        "settings": {"min_depth": float(min_depth), "max_depth": float(max_depth),
                     "median_scaling": bool(median_scaling),
                     "row": row_note,
                     "image_mean": "mean over images of the per-image errors",
                     "pixel_pooled": "errors over all scored pixels of all images together "
                                     "(each image median-scaled on its own)",
                     "by_distance": "the pixel-pooled pixels split by their true distance; ratio = "
                                    "median of prediction / truth"},
    }


_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "abs_rel", "model"),
    ("model_median", "abs_rel", "model med"),
    ("constant", "abs_rel", "constant"),
    ("row", "abs_rel", "row"),
    ("row_oracle", "abs_rel", "row oracle"),
    ("model", "delta1", "d1 model"),
    ("model_median", "delta1", "d1 med"),
    ("constant", "delta1", "d1 const"),
)


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(float(value)) else f"{float(value):.{digits}f}"


def format_real_depth_table(result: Mapping[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_depth_images`' result: one row per image, then the
    mean over images and the pixel-pooled figures; abs rel of every method, delta<1.25 of the
    model and the constant, and how many images the model (median-scaled) beats each baseline on.
    """
    methods = list(result.get("methods", METHODS))
    columns = [c for c in _COLUMNS if c[0] in methods]
    images = list(result.get("images", []))
    name_w = max([len("pixel-pooled"), len("mean over images")] + [len(e["name"]) for e in images])
    head = f"{'image':<{name_w}}  {'pixels':>7}  {'scale':>6}  " + "  ".join(f"{c[2]:>10}" for c in columns)
    lines = [
        "abs rel (lower is better) and d1 = delta<1.25 (higher is better) on the same pixels for every method;",
        "model = metric output" + (", model med = median-scaled" if "model_median" in methods else "")
        + "; baselines median-scaled; scale = median(gt)/median(model)",
        ("row = a row-only depth profile from the other images; " if "row" in methods
         else "row-only map: not computed, it needs at least two images; ")
        + "row oracle = this image's own per-row median ground truth (a bound)",
        head, "-" * len(head),
    ]
    for e in images:
        cells = "  ".join(f"{_fmt(e['errors'][m][k]):>10}" for m, k, _ in columns)
        lines.append(f"{e['name']:<{name_w}}  {e['pixels']:>7}  {_fmt(e['scale'], 2):>6}  {cells}")
    overall = result.get("overall", {})
    lines.append("-" * len(head))
    for key, label in (("image_mean", "mean over images"), ("pixel_pooled", "pixel-pooled")):
        table = overall.get(key, {})
        cells = "  ".join(f"{_fmt(table.get(m, {}).get(k)):>10}" for m, k, _ in columns)
        pixels = overall.get("pixels", 0) if key == "pixel_pooled" else ""
        lines.append(f"{label:<{name_w}}  {pixels:>7}  {'':>6}  {cells}")
    ref = "model_median" if "model_median" in methods else "model"
    if images:
        wins = []
        for b in RIVALS:
            if b in methods:
                count = sum(e["errors"][ref]["abs_rel"] < e["errors"][b]["abs_rel"] for e in images)
                wins.append(f"{b} {count}/{len(images)}")
        lines.append(f"{'model med' if ref == 'model_median' else 'model'} has the lower abs rel than: "
                     + ", ".join(wins) + " images")
    lines.extend(_distance_lines(result.get("by_distance", []), methods))
    if result.get("skipped"):
        lines.append(f"skipped (no depth or no scored pixel): {', '.join(result['skipped'])}")
    return "\n".join(lines)


def _distance_lines(bands: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> list[str]:
    """The ``by_distance`` part of the table: abs rel per band of true distance, and the model's
    median ratio of prediction to truth (below 1: too near)."""
    if not bands:
        return []
    shown = [m for m in ("model", "model_median", "constant", "row") if m in methods]
    labels = {"model": "model", "model_median": "model med", "constant": "constant", "row": "row"}
    ratios = [m for m in ("model", "model_median") if m in methods]
    head = (f"{'true distance':<13}  {'pixels':>7}  " + "  ".join(f"{labels[m]:>10}" for m in shown)
            + "  " + "  ".join(f"{'x ' + labels[m]:>12}" for m in ratios))
    lines = ["", "by true distance, all scored pixels: abs rel, and x = median of prediction / truth "
             "(below 1: too near)", head, "-" * len(head)]
    for b in bands:
        span = f"{b['from']:g}-{b['to']:g} m"
        cells = "  ".join(f"{_fmt(b['abs_rel'].get(m)):>10}" for m in shown)
        xs = "  ".join(f"{_fmt(b['ratio'].get(m), 2):>12}" for m in ratios)
        lines.append(f"{span:<13}  {b['pixels']:>7}  {cells}  {xs}")
    return lines


__all__ = [
    "BASELINES", "DISTANCE_BANDS", "METHODS", "REAL_DEPTH_KEYS", "by_distance", "constant_baseline",
    "evaluate_depth_images",
    "RIVALS", "format_real_depth_table", "median_scale", "row_flat_baseline", "row_oracle_baseline",
    "row_profile", "row_profile_baseline",
    "scored_pixels",
]
