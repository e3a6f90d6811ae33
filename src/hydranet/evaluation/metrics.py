"""Segmentation (confusion-matrix IoU) and depth (Eigen et al. 2014) metrics, accumulated over a set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .protocols import DepthProtocol, get_protocol

DEPTH_KEYS: tuple[str, ...] = ("abs_rel", "sq_rel", "rmse", "rmse_log", "silog",
                               "delta1", "delta2", "delta3")


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class SegmentationMetrics:
    """Confusion matrix over a dataset; IoU per class, mean IoU over classes that occur, pixel accuracy."""

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 class_names: Sequence[str] | None = None) -> None:
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else None
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.missed = np.zeros(self.num_classes, dtype=np.int64)  # predicted ids outside 0..C-1

    def reset(self) -> None:
        self.confusion[:] = 0
        self.missed[:] = 0

    def update(self, pred_labels: Any, target: Any) -> None:
        """Add predicted class ids and targets of the same shape (any batch layout)."""
        pred = _numpy(pred_labels).astype(np.int64).ravel()
        gt = _numpy(target).astype(np.int64).ravel()
        if pred.shape != gt.shape:
            raise InputError(f"prediction has {pred.size} pixels, target {gt.size}; resize predictions "
                             "to the label resolution first")
        valid = (gt != self.ignore_index) & (gt >= 0) & (gt < self.num_classes)
        pred, gt = pred[valid], gt[valid]
        # Out-of-range predictions count as wrong for their target class, never as a class.
        bad = (pred < 0) | (pred >= self.num_classes)
        k = self.num_classes
        self.confusion += np.bincount(gt[~bad] * k + pred[~bad], minlength=k * k).reshape(k, k)
        if bad.any():
            self.missed += np.bincount(gt[bad], minlength=k)

    def merge(self, other: "SegmentationMetrics") -> None:
        self.confusion += other.confusion
        self.missed += other.missed

    def compute(self) -> dict[str, Any]:
        """``miou``, ``iou`` (per class, NaN where the class is absent in both), ``pixel_accuracy``, ``mean_accuracy``."""
        cm = self.confusion.astype(np.float64)
        tp = np.diag(cm)
        gt_count = cm.sum(axis=1) + self.missed
        pred_count = cm.sum(axis=0)
        union = gt_count + pred_count - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, tp / union, np.nan)
            acc = np.where(gt_count > 0, tp / gt_count, np.nan)
        total = gt_count.sum()
        out: dict[str, Any] = {
            "miou": float(np.nanmean(iou)) if np.any(union > 0) else float("nan"),
            "pixel_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
            "mean_accuracy": float(np.nanmean(acc)) if np.any(gt_count > 0) else float("nan"),
            "iou": [float(v) for v in iou],
            "pixels": int(total),
        }
        if self.class_names:
            out["class_names"] = list(self.class_names)
        return out


def depth_errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """The standard errors on matched valid pixel arrays (positive metres)."""
    pred = pred.astype(np.float64)
    gt = gt.astype(np.float64)
    ratio = np.maximum(pred / gt, gt / pred)
    diff = pred - gt
    log_diff = np.log(pred) - np.log(gt)
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff ** 2))),
        "rmse_log": float(np.sqrt(np.mean(log_diff ** 2))),
        # KITTI benchmark scale-invariant log error, x100.
        "silog": float(np.sqrt(max(np.mean(log_diff ** 2) - np.mean(log_diff) ** 2, 0.0)) * 100.0),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25 ** 2)),
        "delta3": float(np.mean(ratio < 1.25 ** 3)),
    }


class DepthMetrics:
    """Depth errors averaged over images (the Eigen / Monodepth convention) under a protocol.

    Per image: pixels with ``min_depth < gt < max_depth`` inside the protocol's crop;
    predictions are optionally median-scaled (``median(gt) / median(pred)``) and then
    clipped to ``[min_depth, max_depth]``. Images without valid pixels are skipped.
    """

    def __init__(self, protocol: str | DepthProtocol = "none", min_depth: float | None = None,
                 max_depth: float | None = None, median_scaling: bool | None = None) -> None:
        p = get_protocol(protocol) if isinstance(protocol, str) else protocol
        self.protocol = DepthProtocol(
            p.name,
            p.min_depth if min_depth is None else float(min_depth),
            p.max_depth if max_depth is None else float(max_depth),
            p.crop,
            p.median_scaling if median_scaling is None else bool(median_scaling),
        )
        self.sums = {k: 0.0 for k in DEPTH_KEYS}
        self.count = 0
        self.scales: list[float] = []

    def reset(self) -> None:
        self.sums = {k: 0.0 for k in DEPTH_KEYS}
        self.count = 0
        self.scales = []

    def update(self, pred: Any, target: Any) -> None:
        """Add one image ``(H, W)`` or a batch ``(N, [1,] H, W)`` of predicted and true depths."""
        p = _numpy(pred).astype(np.float64)
        g = _numpy(target).astype(np.float64)
        if p.shape != g.shape:
            raise InputError(f"depth prediction {p.shape} and target {g.shape} differ; resize "
                             "predictions to the target resolution first")
        p = p.reshape((-1,) + p.shape[-2:])
        g = g.reshape((-1,) + g.shape[-2:])
        proto = self.protocol
        region = proto.crop_mask(*g.shape[-2:])
        for pi, gi in zip(p, g):
            valid = region & np.isfinite(gi) & (gi > proto.min_depth)
            if proto.max_depth is not None:
                valid &= gi < proto.max_depth
            if not valid.any():
                continue
            pv, gv = pi[valid], gi[valid]
            if proto.median_scaling:
                med = np.median(pv)
                scale = float(np.median(gv) / med) if med > 0 else 1.0
                self.scales.append(scale)
                pv = pv * scale
            pv = np.clip(np.nan_to_num(pv, nan=proto.min_depth), proto.min_depth,
                         proto.max_depth if proto.max_depth is not None else np.inf)
            for k, v in depth_errors(pv, gv).items():
                self.sums[k] += v
            self.count += 1

    def compute(self) -> dict[str, Any]:
        if self.count == 0:
            out: dict[str, Any] = {k: float("nan") for k in DEPTH_KEYS}
        else:
            out = {k: v / self.count for k, v in self.sums.items()}
        out["images"] = self.count
        out["protocol"] = self.protocol.name
        if self.scales:
            out["median_scale"] = float(np.median(self.scales))
        return out
