"""Run a model over a dataset and accumulate metrics, optionally under a weather corruption.

Predictions go through :mod:`hydranet.inference.pipeline`, the pre- and post-processing that
``Predictor`` uses too, so ``hydranet eval``, training validation and ``hydranet predict``
score and label an image identically.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..data.corruptions import corrupt
from ..errors import InputError
from ..inference.pipeline import plan_input, postprocess, prepare
from ..model import HydraNet
from .metrics import DepthMetrics, SegmentationMetrics
from .protocols import DepthProtocol

# images (list of uint8 HxWx3) -> list of (labels HxW, depth HxW or None) at the images' size
PredictFn = Callable[[Sequence[np.ndarray]], list[tuple[np.ndarray, np.ndarray | None]]]


def model_predict_fn(model: HydraNet, resize: Sequence[int] | str | None = None,
                     bf16: bool = False) -> PredictFn:
    """Predictions straight from a torch model (no backend, the model left as it is), e.g. during
    training; ``resize`` is ``Predictor``'s ``size`` (None: the weights' own choice)."""
    size = tuple(int(v) for v in resize) if resize is not None and not isinstance(resize, str) else resize
    cfg = model.config

    def predict(images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        plans = [plan_input(cfg, im.shape[:2], size) for im in images]
        inputs = [prepare(im, cfg.mean, cfg.std, plan[0]) for im, plan in zip(images, plans)]
        results: list[tuple[np.ndarray, np.ndarray | None]] = []
        dtype = next(model.parameters()).dtype
        # Same-size inputs share one forward pass; others run one by one.
        shapes = {x.shape for x in inputs}
        groups = [list(range(len(inputs)))] if len(shapes) == 1 else [[i] for i in range(len(inputs))]
        for group in groups:
            x = torch.from_numpy(np.stack([inputs[i] for i in group])).to(dtype)
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = {k: v.float().numpy() for k, v in model(x).items()}
            for j, i in enumerate(group):
                o = postprocess(out, images[i].shape[:2], j, depth_scale=plans[i][1])
                results.append((o.labels, o.depth))
        return results

    return predict


def predictor_predict_fn(predictor: Any, batch_size: int = 1) -> PredictFn:
    """Predictions through ``hydranet.inference.predictor.Predictor`` (any backend)."""

    def predict(images: Sequence[np.ndarray],
                intrinsics: Sequence[Any] | None = None) -> list[tuple[np.ndarray, np.ndarray | None]]:
        preds = predictor.predict_batch(list(images), batch_size=batch_size, intrinsics=intrinsics)
        return [(p.labels, p.depth) for p in preds]

    return predict


def backend_predict_fn(model: Any, backend: str = "auto", size: Any = None, batch_size: int = 1,
                       hfov: float | None = None) -> PredictFn:
    """Predictions of ``model`` through a ``Predictor`` on ``backend``, as ``hydranet predict`` makes
    them (``hfov``: the field of view taken for images whose camera is not stated)."""
    from ..inference.predictor import Predictor

    return predictor_predict_fn(Predictor(model, backend=backend, size=size, hfov=hfov), batch_size)


def load_reference(weights: str, config: Any) -> Any:
    """The reference model of mCE; it must predict the classes of ``config`` for its mIoU to compare."""
    from ..checkpoints import load_model

    reference = load_model(weights)
    rcfg = reference.config
    if rcfg.num_classes != config.num_classes or (
            rcfg.label_set and config.label_set and rcfg.label_set != config.label_set):
        raise InputError(f"--reference {weights}: {rcfg.num_classes} classes ({rcfg.label_set}), the model "
                         f"{config.num_classes} ({config.label_set}); a reference must predict the same classes")
    return reference


def _batches(dataset: Any, batch_size: int, max_images: int | None,
             skipped: list[str]) -> Iterable[list[tuple[int, dict[str, Any]]]]:
    n = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    batch: list[tuple[int, dict[str, Any]]] = []
    for i in range(n):
        try:
            sample = dataset[i]
        except InputError as exc:  # one unreadable image never stops an evaluation
            message = str(exc).split("; ")[0]
            warnings.warn(f"{message}; skipped", stacklevel=3)
            skipped.append(message)
            continue
        batch.append((i, sample))
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
    """Metrics of ``predict`` on ``dataset``; with ``corruption`` (a name of
    :data:`hydranet.data.corruptions.CORRUPTIONS`) each image is corrupted first, deterministically
    per (seed, image index, corruption, severity); hydranet-fog uses the true depth. Samples with
    ``intrinsics`` are predicted as ``predict(images, intrinsics=[K or None, ...])``;
    ``without_intrinsics`` in the result counts the images without."""
    seg = SegmentationMetrics(num_classes, class_names=class_names)
    dep = DepthMetrics(protocol, max_depth=max_depth, median_scaling=median_scaling)
    has_seg = has_depth = False
    total = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    index = without_camera = 0
    skipped: list[str] = []
    with tqdm(total=total, desc=desc, disable=not progress, leave=False) as bar:
        for batch in _batches(dataset, batch_size, max_images, skipped):
            images = []
            for i, s in batch:
                im = s["image"]
                if corruption:
                    im = corrupt(im, corruption, severity, seed=seed, index=i, depth=s.get("depth"))
                images.append(im)
                index += 1
            # Samples that know their camera (KITTI's calibration, intrinsics/NAME.txt) are
            # predicted for it; the others get the predictor's own camera.
            cameras = [s.get("intrinsics") for _, s in batch]
            without_camera += sum(k is None for k in cameras)
            preds = predict(images) if all(k is None for k in cameras) else predict(images, intrinsics=cameras)
            for (_, s), (labels, depth) in zip(batch, preds):
                if s.get("segmentation") is not None:
                    seg.update(labels, np.asarray(s["segmentation"]))
                    has_seg = True
                if s.get("depth") is not None and depth is not None:
                    dep.update(depth, s["depth"])
                    has_depth = True
            bar.update(len(batch))
        bar.update(len(skipped))
    result: dict[str, Any] = {"images": index, "without_intrinsics": without_camera}
    if skipped:
        result["skipped"] = skipped
    if has_seg:
        result["segmentation"] = seg.compute()
    if has_depth:
        result["depth"] = dep.compute()
    return result


# A condition of a robustness grid: (corruption name, severity), or (None, 0) for the clean images.
Condition = tuple[str | None, int]


def condition_key(name: str | None, severity: int) -> str:
    """``"fog 3"``, or ``"clean"``."""
    return f"{name} {int(severity)}" if name else "clean"


def evaluate_grid(predicts: Sequence[Callable[..., list[tuple[np.ndarray, np.ndarray | None]]]], dataset: Any,
                  num_classes: int, conditions: Sequence[Condition], class_names: Sequence[str] | None = None,
                  protocol: str | DepthProtocol = "none", max_depth: float | None = None,
                  median_scaling: bool = False, batch_size: int = 1, max_images: int | None = None,
                  seed: int = 0, progress: bool = True, desc: str = "robustness",
                  stats: dict[str, Any] | None = None) -> list[list[dict[str, Any]]]:
    """Metrics of several models under several conditions, each image read once and corrupted
    once per condition, every model scoring the very same corrupted pictures.

    ``conditions``: ``(name, severity)`` pairs (names of :data:`hydranet.data.corruptions.CORRUPTIONS`),
    ``(None, 0)`` for clean. The corrupted versions of one image go to the models in batches of
    ``batch_size`` (they share a size). A sample with ``intrinsics`` is predicted as
    ``predict(images, intrinsics=[K, ...])`` (see :func:`predictor_predict_fn`), others as
    ``predict(images)``. Returns ``results[model][condition]`` shaped like :func:`evaluate`'s.
    ``stats``, when given, receives ``corrupt_seconds`` {``name severity``: seconds over all
    images}, ``predict_seconds`` [per model] and ``images``.
    """
    import time

    conditions = list(conditions)
    n_models, n_cond = len(predicts), len(conditions)
    seg = [[SegmentationMetrics(num_classes, class_names=class_names) for _ in conditions] for _ in predicts]
    dep = [[DepthMetrics(protocol, max_depth=max_depth, median_scaling=median_scaling) for _ in conditions]
           for _ in predicts]
    has_seg = has_depth = False
    total = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    skipped: list[str] = []
    corrupt_seconds = {condition_key(c, s): 0.0 for c, s in conditions}
    predict_seconds = [0.0] * n_models
    images_done = 0
    step = max(1, int(batch_size))
    with tqdm(total=total * n_cond, desc=desc, disable=not progress, leave=False) as bar:
        for batch in _batches(dataset, 1, max_images, skipped):
            i, sample = batch[0]
            image, target_seg, target_depth = sample["image"], sample.get("segmentation"), sample.get("depth")
            k = sample.get("intrinsics")
            for start in range(0, n_cond, step):
                chunk = list(range(start, min(start + step, n_cond)))
                images = []
                for c in chunk:
                    name, severity = conditions[c]
                    key = condition_key(name, severity)
                    t0 = time.perf_counter()
                    images.append(image if not name else corrupt(image, name, severity, seed=seed, index=i,
                                                                 depth=target_depth))
                    corrupt_seconds[key] += time.perf_counter() - t0
                for m, predict in enumerate(predicts):
                    t0 = time.perf_counter()
                    preds = predict(images) if k is None else predict(images, intrinsics=[k] * len(images))
                    predict_seconds[m] += time.perf_counter() - t0
                    for c, (labels, depth) in zip(chunk, preds):
                        if target_seg is not None:
                            seg[m][c].update(labels, np.asarray(target_seg))
                            has_seg = True
                        if target_depth is not None and depth is not None:
                            dep[m][c].update(depth, target_depth)
                            has_depth = True
                bar.update(len(chunk))
            images_done += 1
        bar.update(len(skipped) * n_cond)
    if stats is not None:
        stats.update(corrupt_seconds=corrupt_seconds, predict_seconds=predict_seconds, images=images_done)
    results: list[list[dict[str, Any]]] = []
    for m in range(n_models):
        per_model = []
        for c in range(n_cond):
            result: dict[str, Any] = {"images": images_done}
            if skipped:
                result["skipped"] = skipped
            if has_seg:
                result["segmentation"] = seg[m][c].compute()
            if has_depth:
                result["depth"] = dep[m][c].compute()
            per_model.append(result)
        results.append(per_model)
    return results
