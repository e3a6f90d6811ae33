"""Scoring models on synthetic drives: the same street under each condition, exact ground truth.

``hydranet demo`` scores one model on one drive; ``tools/compare_drives.py`` scores several
models on several drives. Both go through :func:`score_drive`, which renders each condition
once and runs every model on the same frames, so models differ only in their weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tqdm import tqdm

from .metrics import DepthMetrics, SegmentationMetrics

#: Depth is scored where the truth is in this range (metres); sky and beyond 80 m have none.
DRIVE_DEPTH_RANGE: tuple[float, float] = (1e-3, 80.0)

FrameCallback = Callable[[str, str, int, dict, Any], None]


def score_drive(predictors: Mapping[str, Any], seed: int, frames: int, size: tuple[int, int],
                conditions: Sequence[str] | None = None, renderer: Any | None = None,
                on_frame: FrameCallback | None = None, progress: bool = True) -> dict[str, dict[str, dict]]:
    """Per model and condition: mIoU, pixel accuracy, per-class IoU, depth abs rel, delta1, RMSE.

    ``predictors`` maps a name to a :class:`~hydranet.inference.predictor.Predictor` of a
    CamVid-11 model. ``on_frame(name, condition, index, sample, prediction)`` is called for
    every prediction (the demo writes its panels there). Returns ``{name: {condition: {...}}}``.
    """
    from ..data.synthetic import DRIVE_CONDITIONS, SceneRenderer, render_drive

    conditions = tuple(conditions or DRIVE_CONDITIONS)
    own_renderer = renderer is None
    renderer = SceneRenderer() if own_renderer else renderer
    results: dict[str, dict[str, dict]] = {name: {} for name in predictors}
    try:
        for condition in conditions:
            samples = render_drive(seed, (condition,), frames, size=size, renderer=renderer)[condition]
            for name, predictor in predictors.items():
                seg_m = SegmentationMetrics(predictor.config.num_classes, ignore_index=255)
                depth_m = DepthMetrics("none", min_depth=DRIVE_DEPTH_RANGE[0], max_depth=DRIVE_DEPTH_RANGE[1])
                desc = f"{condition:<6}" if len(predictors) == 1 else f"{condition:<6} {name}"
                for i, sample in enumerate(tqdm(samples, desc=desc, unit="frame", leave=False,
                                                disable=not progress)):
                    pred = predictor.predict(sample["image"])
                    seg_m.update(pred.labels, sample["segmentation"])
                    if pred.depth is not None:
                        depth_m.update(pred.depth, sample["depth"])
                    if on_frame is not None:
                        on_frame(name, condition, i, sample, pred)
                seg, depth = seg_m.compute(), depth_m.compute()
                results[name][condition] = {
                    "miou": seg["miou"], "pixel_accuracy": seg["pixel_accuracy"], "iou": seg["iou"],
                    "abs_rel": depth["abs_rel"], "delta1": depth["delta1"], "rmse": depth["rmse"],
                    "frames": len(samples)}
    finally:
        if own_renderer:
            renderer.close()
    return results


def _change(value: float, reference: float) -> float | None:
    return 100.0 * (value / reference - 1.0) if reference else None


def condition_gaps(results: Mapping[str, Mapping[str, float]],
                   reference: str = "clear") -> dict[str, dict[str, float | None]]:
    """Relative change of mIoU and abs rel of each condition against ``reference``, in per cent.

    ``results`` maps a condition to at least ``miou`` and ``abs_rel`` (one drive's scores or
    means over several drives). Negative mIoU and positive abs rel changes are losses; a
    change against a reference of 0 is ``None``.
    """
    ref = results[reference]
    return {condition: {"miou": _change(r["miou"], ref["miou"]), "abs_rel": _change(r["abs_rel"], ref["abs_rel"])}
            for condition, r in results.items() if condition != reference}
