"""Per-task losses on valid pixels only, returned as (sum, count) so they normalise across ranks.

A target pixel is valid when its label is not ``ignore_index`` (segmentation) or its
depth is positive and finite. A batch without any valid pixel gives a zero loss that
still touches the prediction (``0 * pred.sum()``), so every head stays in the autograd
graph (DDP needs that) and nothing is ever divided by zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.sample import IGNORE_INDEX

DEPTH_LOSSES: tuple[str, ...] = ("berhu", "l1", "log_l1", "silog")


def _full_precision(x: Tensor) -> Tensor:
    """bf16/fp16 (autocast) outputs are promoted to float32; float64 stays float64."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _upsample(pred: Tensor, size: Sequence[int]) -> Tensor:
    if tuple(pred.shape[-2:]) == tuple(size):
        return pred
    return F.interpolate(pred, size=tuple(size), mode="bilinear", align_corners=False)


def segmentation_loss_sum(logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX,
                          class_weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Cross-entropy summed over valid pixels (logits upsampled to the label size) and the normaliser.

    With ``class_weights`` the normaliser is the summed weight of the valid pixels
    (PyTorch's weighted-mean convention).
    """
    logits = _upsample(_full_precision(logits), target.shape[-2:])
    # Ids the model has no class for (a label set that was not remapped) are ignored, not clamped.
    valid = (target != ignore_index) & (target >= 0) & (target < logits.shape[1])
    if class_weights is not None:
        class_weights = class_weights.to(logits.device, logits.dtype)
    losses = F.cross_entropy(logits, target.clamp(0, logits.shape[1] - 1).where(valid, target * 0),
                             weight=class_weights, reduction="none")
    if class_weights is not None:
        w = class_weights[target.clamp(0, logits.shape[1] - 1)] * valid
    else:
        w = valid.to(logits.dtype)
    total = (losses * valid).sum() + 0.0 * logits.sum()
    return total, w.sum().detach()


def _valid_depth(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    pred = _upsample(_full_precision(pred), target.shape[-2:])
    target = target.to(pred.dtype)
    valid = torch.isfinite(target) & (target > 0)
    return pred, target.nan_to_num(0.0), valid


def berhu_threshold(pred: Tensor, target: Tensor) -> Tensor:
    """The reverse-Huber threshold ``c = max|e| / 5`` over valid pixels (Laina et al. 2016)."""
    p, t, valid = _valid_depth(pred, target)
    err = (p - t).abs().where(valid, torch.zeros_like(p))
    return err.max().detach() / 5.0


def depth_loss_sum(pred: Tensor, target: Tensor, kind: str = "berhu",
                   threshold: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Depth loss summed over valid pixels and the number of those pixels.

    ``berhu``: inverse Huber, L1 below ``c`` and ``(e^2 + c^2) / 2c`` above (``c`` from
    :func:`berhu_threshold`, all-reduced across ranks by the caller under DDP);
    ``l1``; ``log_l1``: ``|log |p| - log t|``, a relative error like the abs rel metric, so a
    metre wrong at 5 m costs as much as eight at 40 m (berHu and L1 in metres let far
    pixels dominate); ``silog``: per image ``mean(d^2) - 0.85 mean(d)^2`` with ``d = log p - log t``,
    summed over images with depth, normalised by that image count.
    """
    p, t, valid = _valid_depth(pred, target)
    zero = 0.0 * p.sum()
    if kind == "silog":
        d = (p.clamp_min(1e-3).log() - t.clamp_min(1e-3).log()) * valid
        n = valid.flatten(1).sum(1).to(p.dtype)
        has = n > 0
        mean_d = d.flatten(1).sum(1) / n.clamp_min(1)
        mean_d2 = (d * d).flatten(1).sum(1) / n.clamp_min(1)
        per_image = (mean_d2 - 0.85 * mean_d ** 2) * has
        return per_image.sum() + zero, has.sum().to(p.dtype)
    if kind == "log_l1":
        # |p| because inference reads depth as abs(head output); the clamp keeps log finite.
        err = (p.abs().clamp_min(1e-3).log() - t.clamp_min(1e-3).log()).abs()
        return (err * valid).sum() + zero, valid.sum().to(p.dtype)
    err = (p - t).abs()
    if kind == "l1":
        loss = err
    elif kind == "berhu":
        c = threshold if threshold is not None else berhu_threshold(pred, target)
        c = c.clamp_min(1e-6)
        loss = torch.where(err <= c, err, (err * err + c * c) / (2 * c))
    else:
        raise ValueError(f"unknown depth loss {kind!r}; choose from {', '.join(DEPTH_LOSSES)}")
    return (loss * valid).sum() + zero, valid.sum().to(p.dtype)


def segmentation_loss(logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX,
                      class_weights: Tensor | None = None) -> Tensor:
    """Mean cross-entropy over valid pixels (0 when there are none)."""
    s, n = segmentation_loss_sum(logits, target, ignore_index, class_weights)
    return s / n.clamp_min(1)


def depth_loss(pred: Tensor, target: Tensor, kind: str = "berhu") -> Tensor:
    """Mean depth loss over valid pixels (0 when there are none)."""
    s, n = depth_loss_sum(pred, target, kind)
    return s / n.clamp_min(1)
