"""``Predictor``: images in, full-resolution label maps and metric depth out.

Pre- and post-processing are those of :mod:`hydranet.inference.pipeline`, shared with
``hydranet eval``, training validation and ``hydranet pseudo-label``. What the Predictor adds
is the choice of the network's input size and of the depth's camera correction
(:func:`plan_input`), and the backend that runs the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..checkpoints import load_model
from ..checkpoints.registry import WEIGHTS
from ..errors import InputError
from ..export.cpu import has_bf16
from ..labels import generic_label_set
from ..model import HydraNet, ModelConfig
from .backends import BACKENDS, backend_for_file, create_backend, default_backend
from .camera import ASSUMED_HFOV_DEG, CameraOption, as_intrinsics, check_hfov
from .pipeline import (Outputs, SizeOption, as_rgb_image, check_size, plan_input, postprocess, prepare,
                       resize_image)
from .render import (Box, cached_depth_colorbar, cached_legend_strip, colorize_depth, colorize_labels,
                     colorize_normals, colour_range, make_panel, overlay, panel_grid)
from .threads import ordered_map

Size = tuple[int, int]
T = TypeVar("T")


PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")


def choose_engine(weights: str | Path | HydraNet, backend: str = "auto",
                  precision: str = "auto") -> tuple[str, str | None, str | None]:
    """``(backend, precision or None for torch, note or None)`` for the default fast path.

    ``auto`` backend: the fastest installed engine (OpenVINO, then ONNX Runtime, then
    PyTorch). ``auto`` precision on OpenVINO: the first of the registered weights'
    ``fast_precision`` this CPU has (their cost measured small), else fp32. The note says, in one line, when the fast
    engine is missing and PyTorch runs instead.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    note = None
    if backend == "auto":
        backend = default_backend()
        if backend == "torch":
            note = ("OpenVINO is not installed, so PyTorch runs the network (several times slower): "
                    "pip install 'hydranet[openvino]'")
    if backend == "torch":
        if precision not in ("auto", "fp32"):
            raise InputError(f"precision {precision} needs an exporting engine: --backend openvino or "
                             f"onnxruntime (installed: {', '.join(BACKENDS)})")
        return backend, None, note
    if precision == "auto":
        entry = WEIGHTS.get(weights) if isinstance(weights, str) else None
        measured = entry.fast_precision if entry is not None and backend == "openvino" else ()
        precision = next((p for p in measured if p != "bf16" or has_bf16()), "fp32")
    return backend, precision, note


def class_names_of(config: ModelConfig) -> list[str]:
    """The configuration's class names, numbered names when it has none."""
    if config.class_names and len(config.class_names) == config.num_classes:
        return list(config.class_names)
    return list(generic_label_set(config.num_classes).class_names)


def palette_of(config: ModelConfig) -> np.ndarray:
    """``(num_classes, 3)`` uint8 colours of the configuration, VOC colours filling any gap."""
    generic = generic_label_set(config.num_classes).palette_array()
    if not config.palette:
        return generic
    given = np.asarray(config.palette, dtype=np.uint8).reshape(-1, 3)[: config.num_classes]
    return np.concatenate([given, generic[len(given):]]) if len(given) < config.num_classes else given


@dataclass
class Prediction:
    """One image's prediction at the image's full resolution.

    ``labels`` holds class indices (uint8 for up to 256 classes, else int32), ``depth`` metres
    (float32, ``None`` for a model without a depth head), ``normals`` unit vectors
    ``(H, W, 3)`` when the model predicts them. ``logits_lowres`` / ``depth_lowres`` are the
    raw quarter-resolution network outputs (``(C, h, w)`` and ``(h, w)``, before ``abs``).
    """

    image: np.ndarray
    labels: np.ndarray
    depth: np.ndarray | None
    class_names: list[str]
    palette: np.ndarray
    depth_range: tuple[float, float] = (0.0, 80.0)
    normals: np.ndarray | None = None
    logits_lowres: np.ndarray | None = None
    depth_lowres: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> Size:
        """``(height, width)``."""
        return self.labels.shape[0], self.labels.shape[1]

    def colorize(self) -> np.ndarray:
        """The segmentation in the label set's colours, uint8 RGB."""
        return colorize_labels(self.labels, self.palette)

    def overlay(self, alpha: float = 0.5) -> np.ndarray:
        """The colour segmentation blended over the image."""
        return overlay(self.image, self.labels, self.palette, alpha)

    def depth_colormap(self, depth_range: tuple[float, float] | None = None,
                       cmap: str = "plasma", scale: str = "log") -> np.ndarray:
        """Depth as colours over ``depth_range`` (default: the model's fixed range), on a
        ``log`` or ``linear`` scale (see :func:`colorize_depth`)."""
        if self.depth is None:
            raise ValueError("this model predicts no depth")
        return colorize_depth(self.depth, depth_range or self.depth_range, cmap, scale=scale)

    def panel(self, columns: int | None = None, tile_height: int | None = None,
              depth_range: tuple[float, float] | None = None, alpha: float = 0.5,
              cmap: str = "plasma", legend: bool = True, depth_scale: str = "log") -> np.ndarray:
        """image | segmentation | overlay | depth (| normals), captioned, with legends.

        ``columns`` defaults to one row, or two columns for images wider than 2:1 (KITTI).
        """
        rng = depth_range or self.depth_range
        colours = self.colorize()
        tiles = [self.image, colours, overlay(self.image, self.labels, self.palette, alpha, colours)]
        if self.depth is not None:
            tiles.append(self.depth_colormap(rng, cmap, depth_scale))
        if self.normals is not None:
            tiles.append(colorize_normals(self.normals))
        titles = self._panel_titles(rng, depth_scale)
        columns = columns or self._panel_columns(len(tiles))
        strips = []
        if legend:
            present = np.ones(len(self.palette), bool)
            if len(self.palette) > 12:
                # Only the classes present keep the legend short for 40-class label sets.
                counts = np.bincount(self.labels.ravel(), minlength=len(self.palette))
                present = counts[: len(self.palette)] > 0
            names = [n for n, p in zip(self.class_names, present) if p]
            swatches = self.palette[present]
            th = max(12, min(36, (tile_height or self.size[0]) // 10))
            if names:
                strips.append(lambda w: cached_legend_strip(names, swatches, w, th))
            if self.depth is not None:
                strips.append(lambda w: cached_depth_colorbar(rng, w, cmap, th, depth_scale))
        return make_panel(tiles, titles, legend=strips or None, columns=columns,
                          tile_height=tile_height)

    def panel_boxes(self, columns: int | None = None, tile_height: int | None = None,
                    depth_range: tuple[float, float] | None = None,
                    depth_scale: str = "log") -> list[tuple[str, Box]]:
        """``(caption, (x, y, width, height))`` of every picture in :meth:`panel`, in panel pixels.

        Each picture shows the whole image, so a panel pixel inside a box maps back to the
        image pixel ``((px - x) * W / width, (py - y) * H / height)``.
        """
        titles = self._panel_titles(depth_range or self.depth_range, depth_scale)
        grid = panel_grid([self.size] * len(titles), True, columns or self._panel_columns(len(titles)),
                          tile_height)
        return list(zip(titles, grid.boxes))

    def _panel_titles(self, rng: tuple[float, float], depth_scale: str) -> list[str]:
        titles = ["image", "segmentation", "overlay"]
        if self.depth is not None:
            lo, hi = colour_range(rng, depth_scale)
            titles.append(f"depth {lo:g}-{hi:g} m" + (", log scale" if depth_scale == "log" else ""))
        if self.normals is not None:
            titles.append("surface normals")
        return titles

    def _panel_columns(self, tiles: int) -> int:
        # One row, or two columns for images wider than 2:1 (KITTI), which keeps panels legible.
        h, w = self.size
        return 2 if w > 2 * h else tiles


class Predictor:
    """Runs a HydraNet on images through an inference backend.

    ``weights``: a loaded ``HydraNet``, a weights file or a registered name (default: the
    bundled model; see ``load_model``), or a file written by ``hydranet export`` (``.onnx`` /
    OpenVINO ``.xml``, run by its runtime; ``backend="torch"`` or ``"auto"`` then mean "the
    file's runtime"). ``backend``: ``auto`` (default: the fastest installed engine, see
    :func:`choose_engine`) or a name from ``available_backends()``; ``torch`` is the exact
    reference. ``precision``: ``auto`` (the weights' measured fast precision on an
    exporting engine), ``fp32``, ``bf16`` or ``int8``. Extra keyword options go to the
    backend. ``note`` is one line when the fast engine is missing, else None. ``size``: ``None`` lets the weights choose (camera-aware weights resize each
    image to the focal length they were trained for; the paper's run at native size),
    ``"native"`` keeps the input's size, ``(height, width)`` fixes it; results always come
    back at the input's resolution. ``intrinsics``: the camera (``Intrinsics``, a 3x3 ``K``
    or ``(fx, fy, cx, cy)``), which makes a camera-aware model's depth metric; a call's own
    ``intrinsics`` overrides it. ``hfov``: the horizontal field of view (degrees) taken for an
    image whose camera is not given, instead of :data:`ASSUMED_HFOV_DEG` (e.g. 120 for a
    dash-cam: square pixels, principal point at the centre).

    ``model_seconds`` / ``model_frames`` accumulate the time spent inside the backend running
    the network; :attr:`setup_seconds` is the time it spent making engines instead (conversion
    and INT8 calibration once, compilation once per input size; then cached).
    """

    def __init__(self, weights: str | Path | HydraNet = "default", backend: str = "auto",
                 size: SizeOption = None, intrinsics: CameraOption = None, precision: str = "auto",
                 hfov: float | None = None, **backend_options: Any) -> None:
        self.size = check_size(size)
        self.intrinsics = as_intrinsics(intrinsics)
        self.hfov = ASSUMED_HFOV_DEG if hfov is None else check_hfov(hfov)
        self.note: str | None = None
        exported = None if isinstance(weights, HydraNet) else backend_for_file(weights)
        if exported is not None and Path(weights).is_file():
            # A file written by `hydranet export` runs in its own runtime, no PyTorch model.
            self.model: HydraNet | None = None
            if precision not in ("auto", "fp32"):
                backend_options["precision"] = precision
            self.backend = create_backend(exported if backend in ("torch", "auto") else backend, weights,
                                          **backend_options)
        else:
            backend, chosen, self.note = choose_engine(weights, backend, precision)
            if chosen is not None:
                backend_options.setdefault("precision", chosen)
            self.model = weights if isinstance(weights, HydraNet) else load_model(weights)
            self.backend = create_backend(backend, self.model, **backend_options)
        self.config: ModelConfig = self.backend.config
        self.backend_name = getattr(self.backend, "name", backend)
        self.class_names = class_names_of(self.config)
        self.palette = palette_of(self.config)
        self.depth_range: tuple[float, float] = tuple(self.config.depth_range)  # type: ignore[assignment]
        self.model_seconds = 0.0
        self.model_frames = 0

    @property
    def engine(self) -> str:
        """The engine and precision that run the network, e.g. ``openvino int8``."""
        return f"{self.backend_name} {getattr(self.backend, 'precision', 'fp32')}"

    @property
    def camera_aware(self) -> bool:
        """Whether the weights' depth is metric for a stated camera (see :func:`plan_input`)."""
        return self.config.canonical_focal is not None

    def plan(self, shape: tuple[int, int], intrinsics: CameraOption = None) -> tuple[Size | None, float]:
        """``(network input size or None for native, depth factor)`` for an image of ``shape``."""
        camera = as_intrinsics(intrinsics) or self.intrinsics
        return plan_input(self.config, shape, self.size, camera, self.hfov)

    # -- the three steps, usable separately to pipeline video ------------------------------

    def prepare(self, image: np.ndarray, intrinsics: CameraOption = None) -> np.ndarray:
        """A uint8 RGB image -> the network input at the planned size: the normalised
        ``(3, h, w)`` float32 array, or for an engine that normalises inside its graph
        (``takes_images``: OpenVINO) the resized uint8 ``(h, w, 3)`` image itself."""
        image = as_rgb_image(image)
        size, _ = self.plan(image.shape[:2], intrinsics)
        if getattr(self.backend, "takes_images", False):
            return np.ascontiguousarray(resize_image(image, size))
        return prepare(image, self.config.mean, self.config.std, size)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run the backend on a batch of :meth:`prepare` outputs (stacked); raw quarter-resolution
        outputs."""
        start, waited = time.perf_counter(), self._waited()
        outputs = self.backend(batch)
        self._account(time.perf_counter() - start, self._waited() - waited, 1, int(batch.shape[0]))
        return outputs

    @property
    def setup_seconds(self) -> float:
        """Seconds the backend spent making engines for new input sizes (0 for PyTorch)."""
        clock = getattr(self.backend, "setup", None)
        return clock.seconds if clock is not None else 0.0

    def _waited(self) -> float:
        clock = getattr(self.backend, "setup", None)
        return clock.waited() if clock is not None else 0.0

    def _account(self, seconds: float, waited: float, in_flight: int, frames: int) -> None:
        # A call that waited for an engine to be made counts that wait as set-up, not model time.
        self.model_seconds += max(0.0, seconds - waited) / in_flight
        self.model_frames += frames

    def infer_many(self, items: Iterable[T], batch_of: Callable[[T], np.ndarray | None]
                   ) -> Iterator[tuple[T, dict[str, np.ndarray] | None, BaseException | None]]:
        """``(item, raw outputs, None)`` or ``(item, None, error)`` for each item, in order.

        ``batch_of(item)`` is the item's batch of :meth:`prepare` outputs (None: nothing to run, e.g. an
        input that failed to decode). An engine that runs several requests at once (OpenVINO:
        one per core, and one waiting) keeps that many items in flight: a folder or a video
        goes through at the engine's throughput rather than at one frame's latency.
        """
        in_flight = int(getattr(self.backend, "concurrency", 1))
        call = self.backend.stream_call if in_flight > 1 else self.backend
        lock = threading.Lock()

        def run(item: T) -> dict[str, np.ndarray] | None:
            batch = batch_of(item)
            if batch is None:
                return None
            start, waited = time.perf_counter(), self._waited()
            outputs = call(batch)
            with lock:  # time per frame: requests overlap, so their time is shared
                self._account(time.perf_counter() - start, self._waited() - waited, in_flight,
                              int(batch.shape[0]))
            return outputs

        return ordered_map(run, items, in_flight)

    def finish(self, image: np.ndarray, outputs: dict[str, np.ndarray], index: int = 0,
               keep_lowres: bool = False, intrinsics: CameraOption = None,
               confidence: bool = False, size: Size | None = None) -> Prediction:
        """Item ``index`` of raw backend outputs -> a full-resolution ``Prediction`` for ``image``.

        ``size`` ``(height, width)`` asks for the prediction (and its image) at another
        resolution, e.g. the size a video panel shows; depth stays metric.
        """
        image = as_rgb_image(image)
        _, depth_scale = self.plan(image.shape[:2], intrinsics)
        if size is not None and tuple(size) != image.shape[:2]:
            image = resize_image(image, size)
        out: Outputs = postprocess(outputs, image.shape[:2], index, confidence=confidence,
                                   depth_scale=depth_scale)
        extra: dict[str, Any] = {"confidence": out.confidence} if confidence else {}
        return Prediction(
            image=image, labels=out.labels, depth=out.depth, class_names=self.class_names,
            palette=self.palette, depth_range=self.depth_range, normals=out.normals,
            logits_lowres=np.asarray(outputs["segmentation"][index], np.float32) if keep_lowres else None,
            depth_lowres=(np.asarray(outputs["depth"][index, 0], np.float32)
                          if keep_lowres and "depth" in outputs else None),
            extra=extra,
        )

    # -- convenience ------------------------------------------------------------------------

    def predict(self, image: np.ndarray, keep_lowres: bool = False, intrinsics: CameraOption = None,
                confidence: bool = False) -> Prediction:
        """Predict one uint8 RGB ``(H, W, 3)`` image (``confidence``: softmax of the chosen class
        in ``extra["confidence"]``)."""
        image = as_rgb_image(image)
        outputs = self.infer(self.prepare(image, intrinsics)[None])
        return self.finish(image, outputs, 0, keep_lowres, intrinsics, confidence)

    def predict_batch(self, images: Sequence[np.ndarray], batch_size: int = 4,
                      keep_lowres: bool = False,
                      intrinsics: Sequence[CameraOption] | None = None) -> list[Prediction]:
        """Predict many images; images with the same input size share batches of up to ``batch_size``.

        ``intrinsics``: one camera per image (None entries: the Predictor's camera).
        """
        images = [as_rgb_image(im) for im in images]
        cameras = list(intrinsics) if intrinsics is not None else [None] * len(images)
        if len(cameras) != len(images):
            raise InputError(f"{len(cameras)} intrinsics for {len(images)} images")
        results: list[Prediction | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            size, _ = self.plan(im.shape[:2], cameras[i])
            groups.setdefault(size or im.shape[:2], []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), max(1, batch_size)):
                chunk = indices[start: start + max(1, batch_size)]
                batch = np.stack([self.prepare(images[i], cameras[i]) for i in chunk])
                outputs = self.infer(batch)
                for j, i in enumerate(chunk):
                    results[i] = self.finish(images[i], outputs, j, keep_lowres, cameras[i])
        return results  # type: ignore[return-value]

    @property
    def model_ms_per_frame(self) -> float:
        """Mean backend time per image so far, in milliseconds (0 before any call)."""
        return 1000.0 * self.model_seconds / self.model_frames if self.model_frames else 0.0
