"""How closely a backend (or an exported file) reproduces the PyTorch model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..model import HydraNet


@dataclass
class Agreement:
    """Differences between a candidate's raw outputs and PyTorch's on the same inputs.

    ``max_abs_diff``: largest absolute difference per output; ``label_agreement``:
    fraction of pixels whose argmax class matches; ``depth_rel_diff``: mean of
    ``|d - d_ref| / |d_ref|`` over pixels where ``|d_ref| > 1e-3``.
    """

    max_abs_diff: dict[str, float]
    label_agreement: float
    depth_rel_diff: float | None
    images: int
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def torch_outputs(model: HydraNet, batch: np.ndarray) -> dict[str, np.ndarray]:
    """The PyTorch model's raw outputs (eval mode, fp32) as numpy arrays."""
    with torch.inference_mode():
        return {k: v.float().numpy() for k, v in model.eval()(torch.from_numpy(batch)).items()}


def compare_outputs(references: Sequence[dict[str, np.ndarray]],
                    candidates: Sequence[dict[str, np.ndarray]]) -> Agreement:
    """Aggregate :class:`Agreement` over pairs of output dicts (same keys and shapes)."""
    max_diff: dict[str, float] = {}
    same = total = 0
    rel_sum, rel_count = 0.0, 0
    for ref, cand in zip(references, candidates, strict=True):
        for key, r in ref.items():
            if key not in cand:
                raise ValueError(f"output {key!r} is missing from the candidate's outputs")
            c = cand[key]
            if c.shape != r.shape:
                raise ValueError(f"output {key!r}: shape {c.shape} differs from the reference {r.shape}")
            max_diff[key] = max(max_diff.get(key, 0.0), float(np.abs(c.astype(np.float64) - r).max()))
        labels_ref = ref["segmentation"].argmax(1)
        same += int((cand["segmentation"].argmax(1) == labels_ref).sum())
        total += labels_ref.size
        if "depth" in ref:
            valid = np.abs(ref["depth"]) > 1e-3
            rel_sum += float((np.abs(cand["depth"] - ref["depth"])[valid] / np.abs(ref["depth"][valid])).sum())
            rel_count += int(valid.sum())
    return Agreement(
        max_abs_diff=max_diff,
        label_agreement=same / total if total else float("nan"),
        depth_rel_diff=rel_sum / rel_count if rel_count else None,
        images=len(references),
    )


def check_against_torch(model: HydraNet, run: Callable[[np.ndarray], dict[str, np.ndarray]],
                        batches: Sequence[np.ndarray]) -> Agreement:
    """Run ``run`` (a backend) and the PyTorch model on each batch and compare."""
    refs = [torch_outputs(model, b) for b in batches]
    cands = [run(b) for b in batches]
    agreement = compare_outputs(refs, cands)
    agreement.images = sum(b.shape[0] for b in batches)
    return agreement


def format_agreement(agreement: Agreement, tolerance: float | None = None) -> list[str]:
    """Human-readable lines: max |diff| per output, label agreement, relative depth change."""
    lines = []
    for key, value in agreement.max_abs_diff.items():
        line = f"  {key:<13} max |diff| {value:.3g}"
        if key == "depth" and agreement.depth_rel_diff is not None:
            line += f"   (mean relative {100 * agreement.depth_rel_diff:.3g}%)"
        lines.append(line)
    lines.append(f"  labels        {100 * agreement.label_agreement:.2f}% of pixels agree")
    if tolerance is not None:
        worst = max(agreement.max_abs_diff.values())
        verdict = "yes" if worst <= tolerance else "NO"
        lines.append(f"  within {tolerance:g} of PyTorch: {verdict}")
    return lines
