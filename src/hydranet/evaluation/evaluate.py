"""Run a model over a dataset and accumulate metrics, optionally under a weather corruption.

Predictions are made the way the reference notebooks (and ``Predictor``) make them:
quarter-resolution logits and depth resized bicubically to the label resolution,
argmax for classes, ``abs`` for depth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ..data.preprocess import preprocess
from ..data.weather import apply_weather
from ..model import HydraNet
from .metrics import DepthMetrics, SegmentationMetrics
from .protocols import DepthProtocol

# images (list of uint8 HxWx3) -> list of (labels HxW, depth HxW or None) at the images' size
PredictFn = Callable[[Sequence[np.ndarray]], list[tuple[np.ndarray, np.ndarray | None]]]


def upsample_outputs(logits: np.ndarray, depth: np.ndarray | None, size: tuple[int, int]
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """(C, h, w) logits and (h, w) depth to labels and |depth| at ``size`` (bicubic)."""
    h, w = size
    up = cv2.resize(np.ascontiguousarray(logits.transpose(1, 2, 0)), (w, h), interpolation=cv2.INTER_CUBIC)
    if up.ndim == 2:
        up = up[:, :, None]
    labels = up.argmax(axis=2)
    d = None if depth is None else np.abs(cv2.resize(depth, (w, h), interpolation=cv2.INTER_CUBIC))
    return labels, d


def model_predict_fn(model: HydraNet, resize: Sequence[int] | None = None, bf16: bool = False) -> PredictFn:
    """Predictions straight from a torch model (no backend), e.g. during training."""

    def predict(images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        sizes = [im.shape[:2] for im in images]
        if resize:
            inputs = [cv2.resize(im, (int(resize[1]), int(resize[0])), interpolation=cv2.INTER_AREA)
                      for im in images]
        else:
            inputs = list(images)
        x = preprocess(inputs, model.config.mean, model.config.std).to(next(model.parameters()).dtype)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        logits = out["segmentation"].float().numpy()
        depth = out["depth"].float().numpy()[:, 0] if "depth" in out else None
        return [upsample_outputs(logits[i], None if depth is None else depth[i], sizes[i])
                for i in range(len(images))]

    return predict


def predictor_predict_fn(predictor: Any, batch_size: int = 1) -> PredictFn:
    """Predictions through ``hydranet.inference.predictor.Predictor`` (any backend)."""

    def predict(images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        preds = predictor.predict_batch(list(images), batch_size=batch_size)
        return [(p.labels, p.depth) for p in preds]

    return predict


def _batches(dataset: Any, batch_size: int, max_images: int | None) -> Iterable[list[dict[str, Any]]]:
    n = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    batch: list[dict[str, Any]] = []
    for i in range(n):
        batch.append(dataset[i])
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def evaluate(predict: PredictFn, dataset: Any, num_classes: int, class_names: Sequence[str] | None = None,
             protocol: str | DepthProtocol = "none", max_depth: float | None = None,
             median_scaling: bool = False, corruption: str | None = None, severity: int = 3,
             batch_size: int = 1, max_images: int | None = None, seed: int = 0,
             progress: bool = True, desc: str = "eval") -> dict[str, Any]:
    """Metrics of ``predict`` on ``dataset``; with ``corruption`` each image is corrupted first
    (deterministically: image i uses ``default_rng([seed, i])``, fog uses the true depth)."""
    seg = SegmentationMetrics(num_classes, class_names=class_names)
    dep = DepthMetrics(protocol, max_depth=max_depth, median_scaling=median_scaling)
    has_seg = has_depth = False
    total = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    index = 0
    with tqdm(total=total, desc=desc, disable=not progress, leave=False) as bar:
        for batch in _batches(dataset, batch_size, max_images):
            images = []
            for s in batch:
                im = s["image"]
                if corruption:
                    im = apply_weather(im, corruption, severity, depth=s.get("depth"),
                                       rng=np.random.default_rng([seed, index]))
                images.append(im)
                index += 1
            for s, (labels, depth) in zip(batch, predict(images)):
                if s.get("segmentation") is not None:
                    seg.update(labels, np.asarray(s["segmentation"]))
                    has_seg = True
                if s.get("depth") is not None and depth is not None:
                    dep.update(depth, s["depth"])
                    has_depth = True
            bar.update(len(batch))
    result: dict[str, Any] = {"images": index}
    if has_seg:
        result["segmentation"] = seg.compute()
    if has_depth:
        result["depth"] = dep.compute()
    return result
