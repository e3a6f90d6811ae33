"""What the web page asks of the server, without the web: uploads, jobs, results, pixel readings.

Everything runs through the objects ``hydranet predict`` uses (``Predictor``,
``write_image_outputs``, ``process_video``), so the page and the command give the same pixels
and the same files. Every file goes into one working folder made with ``tempfile.mkdtemp``
and removed by :meth:`Service.close`; uploaded file names are only shown and offered as
download names, never used as paths.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sys
import tempfile
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..checkpoints import RELEASED, WEIGHTS, bundled_path, cached_path, resolve_weights
from ..errors import HydranetError, InputError
from ..inference.backends import available_backends
from ..inference.camera import ASSUMED_HFOV_DEG, Intrinsics, check_hfov, from_hfov
from ..inference.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, VideoReader, decode_image
from ..inference.outputs import OutputOptions, image_paths, video_paths, write_image_outputs
from ..inference.pipeline import SizeOption, check_size
from ..inference.pointcloud import parse_intrinsics
from ..inference.predictor import Prediction, Predictor
from ..inference.raw import read_labels_png
from ..inference.render import DEPTH_SCALES
from ..sizes import parse_size

MB = 1 << 20
DEFAULT_MAX_UPLOAD_MB = 50
DEFAULT_MAX_FRAMES = 300
DEFAULT_EXAMPLES = 3
# Results (inputs and outputs) kept on disk for pixel readings and downloads; older ones go.
DEFAULT_KEEP_RESULTS = 12
# Example frames rendered at start-up: (seed, condition). CamVid's size, what the bundled
# model was trained on; about 0.4 s each on one core.
EXAMPLE_SCENES: tuple[tuple[int, str], ...] = ((5, "clear"), (8, "rain"), (3, "night"), (6, "fog"))
EXAMPLE_SIZE = (360, 480)
STEM = "result"  # every result's files are OUT/result_*, whatever the upload was called
UNKNOWN_CAMERA_NOTE = (f"camera unknown: depth assumes a {ASSUMED_HFOV_DEG:g} degree horizontal field of "
                       "view; give fx, fy, cx, cy or the field of view for metric depth")


class UploadTooLarge(InputError):
    """An upload larger than the server's limit (HTTP 413)."""


class NotFound(HydranetError):
    """An unknown or already removed result, or a file it does not have (HTTP 404)."""


class JobCancelled(HydranetError):
    """The server is stopping; a running video ends early."""


@dataclass
class ServeSettings:
    """What ``hydranet serve`` is started with."""

    weights: Sequence[str] = ()  # --weights: extra registered names or files offered on the page
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * MB
    max_frames: int = DEFAULT_MAX_FRAMES
    examples: int = DEFAULT_EXAMPLES
    keep_results: int = DEFAULT_KEEP_RESULTS
    work_root: Path | None = None  # where the working folder is made (default: the system's temp)


@dataclass(frozen=True)
class WeightsChoice:
    """One weights entry of the page's menu: an id the page sends back, a label, the source."""

    id: str
    label: str
    source: str  # a registered name or a file path, what ``Predictor`` takes


@dataclass
class RunOptions:
    """The page's choices for one prediction."""

    weights: WeightsChoice
    backend: str = "torch"
    size: SizeOption = None
    intrinsics: Intrinsics | None = None
    hfov: float | None = None  # a stated horizontal field of view (degrees), instead of intrinsics
    depth_scale: str = "log"  # the depth picture's colour scale (DEPTH_SCALES)


@dataclass
class Job:
    """One prediction: an image (done when the request returns) or a video (polled)."""

    id: str
    kind: str  # "image" | "video"
    name: str  # the upload's sanitised name, for display and download names only
    input_path: Path
    folder: Path
    options: RunOptions
    status: str = "queued"  # queued | running | done | error
    done: int = 0
    total: int | None = None
    message: str = ""
    notes: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    files: dict[str, Path] = field(default_factory=dict)
    size: tuple[int, int] | None = None  # (height, width) of the image (a video's frames)
    exif_camera: Intrinsics | None = None  # the file's own camera (EXIF, video metadata), when none was given
    class_names: list[str] = field(default_factory=list)
    palette: list[list[int]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """The JSON the page reads."""
        return {"id": self.id, "kind": self.kind, "name": self.name, "status": self.status,
                "done": self.done, "total": self.total, "message": self.message,
                "notes": list(self.notes), "result": self.result}


# -- names ---------------------------------------------------------------------------------


def display_name(filename: str | None) -> str:
    """An uploaded file's name made safe to show and to offer as a download name.

    Only the last path component is kept (browsers may send ``C:\\x\\photo.png`` or
    ``../../x``), and only letters, digits and ``._-`` survive; never used as a path.
    """
    base = re.split(r"[\\/]", filename or "")[-1]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")[:80]
    return safe or "upload"


def download_stem(name: str) -> str:
    """The stem of download names, ``NAME`` in ``NAME_panel.png`` (as ``hydranet predict``)."""
    stem = Path(name).stem if "." in name else name
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:64] or "upload"


def _suffix(name: str) -> str:
    """The name's suffix when it is a known image or video format, else ``.bin``."""
    suffix = Path(name).suffix.lower()
    return suffix if suffix in IMAGE_SUFFIXES | VIDEO_SUFFIXES else ".bin"


def _hide_path(message: str, path: Path, name: str) -> str:
    """``message`` with the working folder's path replaced by the name the user knows."""
    return message.replace(str(path), name)


# -- options ---------------------------------------------------------------------------------


def weights_choices(extra: Sequence[str] = ()) -> tuple[list[WeightsChoice], str]:
    """The bundled model, the released weights already in the cache, then ``extra`` (--weights);
    and the id selected first (the first of ``extra``, else the first choice).

    ``extra`` entries are checked now (a missing file or an unknown name is a one-line error
    at start-up, not on the first click); nothing is loaded.
    """
    choices: list[WeightsChoice] = []
    first: str | None = None
    if bundled_path("default") is not None:
        choices.append(WeightsChoice("default", f"default: {WEIGHTS['default'].description}", "default"))
    for name, entry in RELEASED.items():
        if cached_path(name).is_file():
            choices.append(WeightsChoice(name, f"{name}: {entry.description}", name))
    for n, text in enumerate(extra):
        if text in WEIGHTS:
            resolve_weights(text)  # the message says how to download it when absent
            if all(c.id != text for c in choices):
                choices.append(WeightsChoice(text, f"{text}: {WEIGHTS[text].description}", text))
            first = first or text
            continue
        path = Path(text).expanduser()
        if not path.is_file():
            raise InputError(f"--weights {text}: no such file (pass a weights file or one of "
                             f"{', '.join(WEIGHTS)})")
        choices.append(WeightsChoice(f"file{n}", f"{path.name} ({path.parent})", str(path.resolve())))
        first = first or f"file{n}"
    if not choices:
        raise InputError("no weights to offer: this installation bundles none; pass --weights FILE "
                         "or download released ones (`hydranet weights download kitti6`)")
    return choices, first or choices[0].id


def parse_size_field(text: str | None) -> SizeOption:
    """The page's input size: ``default`` (the weights choose), ``native`` or ``HxW``."""
    value = (text or "").strip().lower()
    if value in ("", "default", "auto"):
        return None
    if value == "native":
        return "native"
    try:
        return check_size(parse_size(value, minimum=8, dynamic=False))
    except InputError as exc:
        raise InputError(f"input size {exc}") from None


def parse_camera_field(text: str | None) -> Intrinsics | None:
    """``fx,fy,cx,cy`` in pixels, or nothing."""
    value = (text or "").strip()
    return parse_intrinsics(value) if value.strip(", ") else None


def parse_hfov_field(text: str | None) -> float | None:
    """A horizontal field of view in degrees, or nothing."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        degrees = float(value)
    except ValueError:
        raise InputError(f"field of view {value!r}: give it in degrees, e.g. 120") from None
    return check_hfov(degrees, "field of view")


# -- the service -------------------------------------------------------------------------------


class Service:
    """The server's state: its working folder, the loaded models, the jobs and their results.

    All model work runs on one worker thread, one job at a time: two cores gain nothing from
    two concurrent networks, and a queue keeps memory bounded. Call :meth:`start` once the
    server is up (examples, model warm-up) and :meth:`close` at exit (removes the folder).
    """

    def __init__(self, settings: ServeSettings | None = None) -> None:
        self.settings = settings or ServeSettings()
        # The first --weights is what the page selects first; else the bundled model.
        self.weights, self.default_weights = weights_choices(self.settings.weights)
        self.backends = available_backends()
        self.workdir = Path(tempfile.mkdtemp(prefix="hydranet-serve-", dir=self.settings.work_root))
        self.incoming = self.workdir / "incoming"
        self.incoming.mkdir()
        self._examples_dir = self.workdir / "examples"
        self._jobs_dir = self.workdir / "jobs"
        self._examples_dir.mkdir()
        self._jobs_dir.mkdir()
        self.examples: list[dict[str, Any]] = []
        self.examples_pending = self.settings.examples > 0
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._jobs_lock = threading.Lock()
        self._predictors: OrderedDict[tuple[str, str], Predictor] = OrderedDict()
        self._arrays: OrderedDict[str, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hydranet-serve")
        self._closing = threading.Event()
        self._closed = False

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Render the example frames and load the default model, in the background."""
        if self.settings.examples > 0:
            threading.Thread(target=self._render_examples, daemon=True,
                             name="hydranet-serve-examples").start()
        default = next(w for w in self.weights if w.id == self.default_weights)
        self._executor.submit(self._quietly, lambda: self._predictor(default, "torch"))

    def close(self) -> None:
        """Stop the running video, finish the worker and remove the working folder."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def _quietly(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:  # the page reports the same error when the model is used
            print(f"hydranet serve: {exc}", file=sys.stderr)

    def _render_examples(self) -> None:
        try:
            from ..data.synthetic import SceneRenderer, render_scene

            renderer = SceneRenderer()
            try:
                for i, (seed, condition) in enumerate(EXAMPLE_SCENES[: self.settings.examples]):
                    if self._closing.is_set():
                        return
                    sample = render_scene(seed, condition, size=EXAMPLE_SIZE, renderer=renderer)
                    path = self._examples_dir / f"example{i}.png"
                    Image.fromarray(sample["image"]).save(path)
                    self.examples.append({"id": str(i), "name": f"synthetic street, {condition}",
                                          "file": path, "url": f"/api/examples/{i}.png"})
            finally:
                renderer.close()
        except Exception as exc:  # examples are a convenience: the page works without them
            print(f"hydranet serve: could not render the example frames ({exc})", file=sys.stderr)
        finally:
            self.examples_pending = False

    def options(self) -> dict[str, Any]:
        """What the page offers: weights, backends, limits and examples."""
        return {
            "weights": [{"id": w.id, "label": w.label} for w in self.weights],
            "default_weights": self.default_weights,
            "backends": self.backends,
            "max_upload_bytes": self.settings.max_upload_bytes,
            "max_frames": self.settings.max_frames,
            "examples": [{"id": e["id"], "name": e["name"], "url": e["url"]} for e in self.examples],
            "examples_pending": self.examples_pending,
            "image_suffixes": sorted(IMAGE_SUFFIXES),
            "video_suffixes": sorted(VIDEO_SUFFIXES),
            "depth_scales": list(DEPTH_SCALES),
        }

    def example_file(self, example_id: str) -> Path:
        for example in self.examples:
            if example["id"] == example_id:
                return example["file"]
        raise InputError(f"example {example_id!r}: no such example frame")

    def run_options(self, fields: Mapping[str, str]) -> RunOptions:
        """The page's form fields -> :class:`RunOptions`; one-line errors for bad values."""
        wanted = fields.get("weights") or self.default_weights
        weights = next((w for w in self.weights if w.id == wanted), None)
        if weights is None:
            raise InputError(f"weights {wanted!r}: not offered by this server; choose one of "
                             f"{', '.join(w.id for w in self.weights)}")
        backend = fields.get("backend") or "torch"
        if backend not in self.backends:
            raise InputError(f"backend {backend!r}: not installed here; choose one of "
                             f"{', '.join(self.backends)}")
        camera, hfov = parse_camera_field(fields.get("intrinsics")), parse_hfov_field(fields.get("hfov"))
        if camera is not None and hfov is not None:
            raise InputError("camera: give fx, fy, cx, cy or a field of view, not both")
        scale = fields.get("depth_scale") or "log"
        if scale not in DEPTH_SCALES:
            raise InputError(f"depth scale {scale!r}: choose {' or '.join(DEPTH_SCALES)}")
        return RunOptions(weights, backend, parse_size_field(fields.get("size")), camera, hfov, scale)

    # -- jobs --------------------------------------------------------------------------------

    def new_job(self, fields: Mapping[str, str], upload: Path | None = None,
                filename: str | None = None) -> Job:
        """A job for an upload (moved into the job's folder), an example or an earlier input.

        Checks everything that can be checked at once (options, file type, video length), so
        a bad request gets its message before any work is queued.
        """
        options = self.run_options(fields)
        job_id = secrets.token_hex(8)
        folder = self._jobs_dir / job_id
        folder.mkdir()
        try:
            if upload is not None:
                name = display_name(filename)
                source = folder / f"input{_suffix(name)}"
                shutil.move(upload, source)
            elif fields.get("example"):
                example = self.example_file(fields["example"])
                name = f"example{fields['example']}.png"
                source = folder / "input.png"
                shutil.copyfile(example, source)
            elif fields.get("rerun"):
                previous = self.get(fields["rerun"])
                name = previous.name
                source = folder / previous.input_path.name
                shutil.copyfile(previous.input_path, source)
            else:
                raise InputError("nothing to predict: choose an image or a video")
            job = Job(job_id, self._kind(source, name), name, source, folder, options)
            if job.kind == "video":
                self._check_video(job)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with self._jobs_lock:
            self.jobs[job_id] = job
        self._forget_old()
        return job

    def get(self, job_id: str) -> Job:
        """The job of ``job_id``; :class:`NotFound` when unknown or already removed."""
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"result {job_id!r} is not here (the server keeps the last "
                           f"{self.settings.keep_results}); upload the file again")
        return job

    def submit(self, job: Job) -> Future:
        """Queue ``job`` on the worker thread."""
        run = self._run_video if job.kind == "video" else self._run_image
        return self._executor.submit(self._run, job, run)

    def _kind(self, path: Path, name: str) -> str:
        suffix = Path(name).suffix.lower()
        if suffix in VIDEO_SUFFIXES and suffix != ".gif":
            return "video"
        try:
            with Image.open(path) as im:
                # An animated GIF (or WebP, APNG) is a video, as for `hydranet predict`.
                return "video" if getattr(im, "n_frames", 1) > 1 else "image"
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            pass
        if suffix in IMAGE_SUFFIXES:
            # Its suffix says image: decode_image words the damage (e.g. a truncated PNG).
            return "image"
        try:
            with VideoReader(path):
                return "video"
        except InputError:
            raise InputError(f"{name}: not an image or a video (unrecognised or corrupt file); "
                             "upload a PNG, JPEG, BMP, TIFF or WebP image or an MP4, AVI, MKV, "
                             "MOV or WebM video") from None

    def _check_video(self, job: Job) -> None:
        try:
            with VideoReader(job.input_path) as reader:
                expected = reader.expected_frames
        except InputError as exc:
            raise InputError(_hide_path(str(exc), job.input_path, job.name)) from None
        limit = self.settings.max_frames
        if expected > limit:
            raise InputError(f"{job.name}: {expected} frames, more than the {limit}-frame limit of "
                             "this server (hydranet serve --max-frames); cut the video first")
        job.total = expected or None

    def _forget_old(self) -> None:
        """Keep the newest results; remove the folders of older finished ones."""
        with self._jobs_lock:
            finished = [j for j in self.jobs.values() if j.status in ("done", "error")]
            extra = len(self.jobs) - self.settings.keep_results
            for job in finished[: max(0, extra)]:
                del self.jobs[job.id]
                self._arrays.pop(job.id, None)
                shutil.rmtree(job.folder, ignore_errors=True)

    def _run(self, job: Job, run: Callable[[Job], None]) -> None:
        job.status = "running"
        try:
            run(job)
            job.status = "done"
        except JobCancelled:
            job.status, job.message = "error", "the server is stopping"
        except HydranetError as exc:
            job.status, job.message = "error", _hide_path(_one_line(exc), job.input_path, job.name)
        except Exception as exc:  # reported on the page in one line; the log keeps the traceback
            traceback.print_exc()
            job.status = "error"
            job.message = _hide_path(f"{job.name}: {type(exc).__name__}: {_one_line(exc)}",
                                     job.input_path, job.name)
        finally:
            self._forget_old()

    def _predictor(self, weights: WeightsChoice, backend: str) -> Predictor:
        key = (weights.id, backend)
        if key not in self._predictors:
            self._predictors[key] = Predictor(weights.source, backend=backend)
            while len(self._predictors) > 2:  # models cost memory; two cover switching back and forth
                self._predictors.popitem(last=False)
        self._predictors.move_to_end(key)
        return self._predictors[key]

    def _prepared(self, options: RunOptions) -> Predictor:
        predictor = self._predictor(options.weights, options.backend)
        # Size and camera are per-request choices; setting them here is what passing them to
        # Predictor(...) does, and keeps the backend (converting one takes seconds). Only the
        # worker thread uses predictors, so nothing else sees the change.
        predictor.size = options.size
        predictor.intrinsics = options.intrinsics
        predictor.hfov = options.hfov or ASSUMED_HFOV_DEG
        return predictor

    def _output_options(self, predictor: Predictor, pred: Prediction, job: Job) -> OutputOptions:
        has_depth = pred.depth is not None
        camera = job.options.intrinsics or job.exif_camera
        if camera is None and has_depth:
            camera = from_hfov(job.options.hfov or ASSUMED_HFOV_DEG, *pred.size)
        # The page shows one picture and reads pixels off it: lossless PNG, whatever it costs.
        return OutputOptions(save=("panel", "raw"), image_format="png", pointcloud=has_depth, intrinsics=camera,
                             depth_scale=job.options.depth_scale,
                             model_name=predictor.config.name or job.options.weights.id,
                             label_set=predictor.config.label_set)

    def _notes(self, predictor: Predictor, job: Job) -> list[str]:
        if "depth" not in predictor.config.tasks or job.options.intrinsics is not None:
            return []
        if job.exif_camera is not None:
            where = "video's metadata" if job.kind == "video" else "image's EXIF"
            return [f"camera from the {where} focal length: fx {job.exif_camera.fx:.0f} px"]
        if job.options.hfov is not None:
            return [f"camera: a {job.options.hfov:g} degree horizontal field of view, centred on the image"]
        notes = [UNKNOWN_CAMERA_NOTE] if predictor.camera_aware else []
        notes.append(f"the point cloud assumes a {ASSUMED_HFOV_DEG:g} degree camera centred on the image")
        return notes

    def _write_still(self, job: Job, predictor: Predictor, pred: Prediction,
                     seconds: float) -> dict[str, Any]:
        """Write the panel and raw outputs of one prediction (an image, a video's first frame)."""
        opts = self._output_options(predictor, pred, job)
        paths = image_paths(job.folder / STEM, opts, pred.depth is not None)
        write_image_outputs(pred, paths, opts, source=job.name)
        with Image.open(paths["panel"]) as im:
            panel_w, panel_h = im.size
        kinds = {"panel": "panel", "raw_labels": "labels", "raw_depth_png": "depth",
                 "raw_depth_npy": "npy", "raw_json": "json", "pointcloud": "ply"}
        job.files.update({kinds[k]: p for k, p in paths.items() if k in kinds})
        job.size = pred.size
        job.class_names = list(pred.class_names)
        job.palette = [[int(v) for v in c] for c in pred.palette]
        self._remember(job.id, (pred.labels, pred.depth))
        return {
            "image": {"height": pred.size[0], "width": pred.size[1]},
            "panel": {"height": panel_h, "width": panel_w},
            "tiles": [{"name": t, "x": x, "y": y, "w": w, "h": h} for t, (x, y, w, h) in pred.panel_boxes()],
            "has_depth": pred.depth is not None,
            "model": opts.model_name,
            "backend": predictor.backend_name,
            "model_ms": round(1000 * seconds, 1),
            "files": self._file_urls(job),
        }

    def _file_urls(self, job: Job) -> dict[str, str]:
        return {kind: f"/api/result/{job.id}/file/{kind}" for kind in job.files}

    def _run_image(self, job: Job) -> None:
        decoded = decode_image(job.input_path)
        if job.options.intrinsics is None and job.options.hfov is None:
            job.exif_camera = decoded.camera
        predictor = self._prepared(job.options)
        start = predictor.model_seconds
        pred = predictor.predict(decoded.image, intrinsics=job.exif_camera)
        job.notes = self._notes(predictor, job)
        job.result = self._write_still(job, predictor, pred, predictor.model_seconds - start)
        job.done = job.total = 1

    def _run_video(self, job: Job) -> None:
        from ..inference.runner import Job as VideoJob
        from ..inference.runner import process_video

        predictor = self._prepared(job.options)
        own_camera = job.options.intrinsics is None and job.options.hfov is None
        opts = OutputOptions(save=("panel",), video_formats=("mp4",), exif_camera=own_camera,
                             depth_scale=job.options.depth_scale,
                             model_name=predictor.config.name or job.options.weights.id,
                             label_set=predictor.config.label_set)
        stem = job.folder / STEM
        paths = video_paths(stem, opts)
        start = predictor.model_seconds
        still: dict[str, Any] = {}

        def on_frame(index: int, pred: Prediction, camera: Intrinsics | None) -> None:
            if self._closing.is_set():
                raise JobCancelled("the server is stopping")
            if not still:  # the first frame also as a still: pixel readings and raw downloads
                job.exif_camera = camera  # the video's own, when its depth used it
                still.update(self._write_still(job, predictor, pred, predictor.model_seconds - start))
            job.done += 1

        written, problem = process_video(VideoJob(job.input_path, "video", stem, paths), predictor,
                                         opts, every=1, on_frame=on_frame,
                                         max_frames=self.settings.max_frames, full_resolution=True)
        if not written:
            raise InputError(_hide_path(problem or f"{job.name}: no frames decoded",
                                        job.input_path, job.name))
        job.notes = self._notes(predictor, job)
        if problem:
            job.notes.append(_hide_path(problem, job.input_path, job.name))
        if job.total is None and written >= self.settings.max_frames:
            job.notes.append(f"stopped after {written} frames, the limit of this server "
                             "(hydranet serve --max-frames)")
        job.files["video"] = paths["panel.mp4"]
        job.total = written
        still["files"] = self._file_urls(job)
        still["frames"] = written
        still["model_ms"] = round(1000 * (predictor.model_seconds - start) / written, 1)
        job.result = still

    # -- results -------------------------------------------------------------------------------

    def pixel(self, job_id: str, x: int, y: int) -> dict[str, Any]:
        """Class and depth of pixel ``(x, y)`` of a result, in the original image's coordinates."""
        job = self.get(job_id)
        if job.size is None:
            raise InputError("this result has no picture yet")
        h, w = job.size
        if not (0 <= x < w and 0 <= y < h):
            raise InputError(f"pixel ({x}, {y}) is outside the {w}x{h} image")
        labels, depth = self._result_arrays(job)
        index = int(labels[y, x])
        names, palette = job.class_names, job.palette
        value = None if depth is None else float(depth[y, x])
        name = names[index] if index < len(names) else str(index)
        # The network gives sky a number too, but it is no distance: the raw value stays in
        # depth_m (as in the .npy), the text does not pretend.
        text = "no depth" if value is None else "no distance" if name == "sky" else f"{value:.2f} m"
        return {"x": x, "y": y, "class_index": index, "class_name": name,
                "color": palette[index] if index < len(palette) else [0, 0, 0],
                "depth_m": value, "depth_text": text}

    def _result_arrays(self, job: Job) -> tuple[np.ndarray, np.ndarray | None]:
        arrays = self._arrays.get(job.id)
        if arrays is None:  # an older result: read back what was written
            depth = np.load(job.files["npy"], mmap_mode="r") if "npy" in job.files else None
            arrays = (read_labels_png(job.files["labels"]), depth)
            self._remember(job.id, arrays)
        return arrays

    def _remember(self, job_id: str, arrays: tuple[np.ndarray, np.ndarray | None]) -> None:
        # The last few results stay in memory: hovering asks for a pixel many times a second.
        with self._jobs_lock:
            self._arrays[job_id] = arrays
            while len(self._arrays) > 4:
                self._arrays.popitem(last=False)

    def file(self, job_id: str, kind: str) -> tuple[Path, str]:
        """``(path, download name)`` of one output of a result."""
        job = self.get(job_id)
        path = job.files.get(kind)
        if path is None or not path.is_file():
            raise NotFound(f"result {job_id}: no {kind!r} file (have: {', '.join(job.files) or 'none yet'})")
        stem = download_stem(job.name)
        # The names `hydranet predict` gives the same outputs, with the upload's stem.
        return path, stem + path.name[len(STEM):]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = [
    "DEFAULT_MAX_FRAMES", "DEFAULT_MAX_UPLOAD_MB", "Job", "JobCancelled", "MB", "NotFound", "RunOptions",
    "ServeSettings", "Service", "UploadTooLarge", "WeightsChoice", "display_name",
    "download_stem", "parse_camera_field", "parse_hfov_field", "parse_size_field", "weights_choices",
]
