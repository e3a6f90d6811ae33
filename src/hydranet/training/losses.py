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

# Ordinal constraints need no camera: in one image column, what lies above a ground pixel
# is farther (the ground recedes to the horizon, and anything standing on it stands behind
# that point), sky is farther than anything below it, and the ground seen above a road user
# or a building seen above it is behind it. They reach the pixels pseudo-depth leaves empty.
ORDINAL_GROUND: tuple[str, ...] = ("road", "pavement", "sidewalk", "terrain")
ORDINAL_STANDING: tuple[str, ...] = ("building", "wall", "pole", "tree", "vegetation", "sign",
                                     "traffic sign", "traffic light", "fence", "car", "truck", "bus",
                                     "train", "motorcycle", "bicycle", "pedestrian", "bicyclist",
                                     "person", "rider")
ORDINAL_ROAD_USERS: tuple[str, ...] = ("car", "truck", "bus", "motorcycle", "bicycle", "pedestrian",
                                       "bicyclist", "person", "rider")
ORDINAL_BEHIND_ROAD_USERS: tuple[str, ...] = ORDINAL_GROUND + ("building", "wall")
ORDINAL_SKY: tuple[str, ...] = ("sky",)


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
    valid = _valid_labels(target, logits.shape[1], ignore_index)
    if class_weights is not None:
        class_weights = class_weights.to(logits.device, logits.dtype)
    losses = F.cross_entropy(logits, target.clamp(0, logits.shape[1] - 1).where(valid, target * 0),
                             weight=class_weights, reduction="none")
    total = (losses * valid).sum() + 0.0 * logits.sum()
    return total, segmentation_count(target, logits.shape[1], ignore_index, class_weights).to(logits.dtype)


def _valid_labels(target: Tensor, num_classes: int, ignore_index: int) -> Tensor:
    # Ids the model has no class for (a label set that was not remapped) are ignored, not clamped.
    return (target != ignore_index) & (target >= 0) & (target < num_classes)


def segmentation_count(target: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX,
                       class_weights: Tensor | None = None) -> Tensor:
    """The normaliser of :func:`segmentation_loss_sum`, from the labels alone (no prediction)."""
    valid = _valid_labels(target, num_classes, ignore_index)
    if class_weights is None:
        return valid.sum().double()
    w = class_weights.to(target.device, torch.float64)[target.clamp(0, num_classes - 1)]
    return (w * valid).sum()


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
        return per_image.sum() + zero, depth_count(target, kind).to(p.dtype)
    if kind == "log_l1":
        # |p| because inference reads depth as abs(head output); the clamp keeps log finite.
        err = (p.abs().clamp_min(1e-3).log() - t.clamp_min(1e-3).log()).abs()
        return (err * valid).sum() + zero, depth_count(target, kind).to(p.dtype)
    err = (p - t).abs()
    if kind == "l1":
        loss = err
    elif kind == "berhu":
        c = threshold if threshold is not None else berhu_threshold(pred, target)
        c = c.clamp_min(1e-6)
        loss = torch.where(err <= c, err, (err * err + c * c) / (2 * c))
    else:
        raise ValueError(f"unknown depth loss {kind!r}; choose from {', '.join(DEPTH_LOSSES)}")
    return (loss * valid).sum() + zero, depth_count(target, kind).to(p.dtype)


def ordinal_rules(class_names: Sequence[str]) -> Tensor:
    """``rules[b, a]`` is True when class ``a`` seen above class ``b`` in a column must be farther.

    Rules (names the label set does not have are skipped): above ground, ground and standing
    classes; above anything but sky, sky; above a road user, ground, buildings and walls.
    """
    names = [n.lower() for n in class_names]
    ids = {n: i for i, n in enumerate(names)}

    def pick(group: Sequence[str]) -> list[int]:
        return [ids[n] for n in group if n in ids]

    rules = torch.zeros(len(names), len(names), dtype=torch.bool)
    ground, standing, sky = pick(ORDINAL_GROUND), pick(ORDINAL_STANDING), pick(ORDINAL_SKY)
    for b in ground:
        rules[b, ground + standing] = True
    for b in range(len(names)):
        if b not in sky:
            rules[b, sky] = True
    for b in pick(ORDINAL_ROAD_USERS):
        rules[b, pick(ORDINAL_BEHIND_ROAD_USERS)] = True
    return rules


def ordinal_depth_loss_sum(pred: Tensor, labels: Tensor, rules: Tensor,
                           offsets: Sequence[int] = (2, 8, 24),
                           margin: float = 0.01) -> tuple[Tensor, Tensor]:
    """Hinge on log-depth order for pixel pairs one above the other, summed, and the pair count.

    For every pixel ``(v, u)`` of class ``b`` and the pixel ``(v - k, u)`` of class ``a`` with
    ``rules[b, a]``, the loss is ``max(0, margin - (log|p(v-k,u)| - log|p(v,u)|))``: zero once
    the upper pixel is farther by ``margin`` in log-depth, so only wrong orderings cost. Labels
    outside the rules' classes (ignore) take part in no pair.
    """
    p = _upsample(_full_precision(pred), labels.shape[-2:])[:, 0].abs().clamp_min(1e-3).log()
    total = 0.0 * p.sum()
    count = torch.zeros((), dtype=p.dtype, device=p.device)
    for k, pair in _ordinal_pairs(labels, rules, offsets):
        gap = p[:, :-k] - p[:, k:]
        total = total + (F.relu(margin - gap) * pair).sum()
        count = count + pair.sum().to(p.dtype)
    return total, count.detach()


def _ordinal_pairs(labels: Tensor, rules: Tensor, offsets: Sequence[int]):
    """``(k, pair mask (N, H - k, W))`` for each usable offset: pixel (v, u) with (v - k, u)."""
    lab = labels.long()
    if lab.dim() == 4:
        lab = lab[:, 0]
    rules = rules.to(lab.device)
    n = rules.shape[0]
    known = (lab >= 0) & (lab < n)
    lab = lab.clamp(0, n - 1)
    for k in offsets:
        if 0 < k < lab.shape[-2]:
            yield k, rules[lab[:, k:], lab[:, :-k]] & known[:, k:] & known[:, :-k]


def ordinal_count(labels: Tensor, rules: Tensor, offsets: Sequence[int] = (2, 8, 24)) -> Tensor:
    """The normaliser of :func:`ordinal_depth_loss_sum` (ordered pairs), from the labels alone."""
    return sum((pair.sum().double() for _, pair in _ordinal_pairs(labels, rules, offsets)),
               torch.zeros((), dtype=torch.float64))


def _log_residual(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """``log|p| - log t`` and its validity, at the target's size, ``(N, H, W)``."""
    p, t, valid = _valid_depth(pred, target)
    r = p.abs().clamp_min(1e-3).log() - t.clamp_min(1e-3).log()
    valid = valid[:, 0]
    return r[:, 0].where(valid, torch.zeros_like(r[:, 0])), valid


def _gradient_pairs(valid: Tensor, scales: int):
    """``(stride, x pairs (N, H', W'-1), y pairs (N, H'-1, W'))`` on grids subsampled by 1, 2, 4..."""
    for i in range(scales):
        k = 2 ** i
        v = valid[:, ::k, ::k]
        if v.shape[-1] < 2 or v.shape[-2] < 2:
            break
        yield k, v[:, :, 1:] & v[:, :, :-1], v[:, 1:] & v[:, :-1]


def gradient_loss_sum(pred: Tensor, target: Tensor, scales: int = 4) -> tuple[Tensor, Tensor]:
    """Scale-invariant gradient matching on log depth, summed, and the pair count.

    With ``R = log|p| - log t`` on valid pixels, the loss is ``|R(v, u+1) - R(v, u)|`` plus the
    same down a column, for neighbours on the full grid and on grids subsampled by 2, 4, ...
    (``scales`` grids), over pairs whose two pixels are valid (Li & Snavely's MegaDepth loss).
    A global scale of the prediction cancels, so it costs only where the *shape* of the depth
    is wrong: a facade whose far end is predicted as near as its near end, a flattened range.
    """
    r, valid = _log_residual(pred, target)
    total = 0.0 * r.sum()
    count = torch.zeros((), dtype=r.dtype, device=r.device)
    for k, px, py in _gradient_pairs(valid, scales):
        g = r[:, ::k, ::k]
        total = total + ((g[:, :, 1:] - g[:, :, :-1]).abs() * px).sum() \
            + ((g[:, 1:] - g[:, :-1]).abs() * py).sum()
        count = count + (px.sum() + py.sum()).to(r.dtype)
    return total, count.detach()


def gradient_count(target: Tensor, scales: int = 4) -> Tensor:
    """The normaliser of :func:`gradient_loss_sum` (pairs of valid neighbours), from the target alone."""
    valid = (torch.isfinite(target) & (target > 0))[:, 0]
    return sum((px.sum().double() + py.sum().double() for _, px, py in _gradient_pairs(valid, scales)),
               torch.zeros((), dtype=torch.float64))


def depth_count(target: Tensor, kind: str = "berhu") -> Tensor:
    """The normaliser of :func:`depth_loss_sum`, from the targets alone: valid pixels, or for
    ``silog`` the images with any."""
    valid = torch.isfinite(target) & (target > 0)
    if kind == "silog":
        return (valid.flatten(1).sum(1) > 0).sum().double()
    return valid.sum().double()


def segmentation_loss(logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX,
                      class_weights: Tensor | None = None) -> Tensor:
    """Mean cross-entropy over valid pixels (0 when there are none)."""
    s, n = segmentation_loss_sum(logits, target, ignore_index, class_weights)
    return s / n.clamp_min(1)


def depth_loss(pred: Tensor, target: Tensor, kind: str = "berhu") -> Tensor:
    """Mean depth loss over valid pixels (0 when there are none)."""
    s, n = depth_loss_sum(pred, target, kind)
    return s / n.clamp_min(1)
