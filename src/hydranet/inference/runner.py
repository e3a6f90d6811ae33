"""Running a model over many inputs: finding them, naming their outputs, images and videos.

``hydranet predict`` parses its options into these objects and prints what they report;
benchmarks time :func:`process_video` as the command runs it.
"""

from __future__ import annotations

import itertools
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..errors import HydranetError, InputError, debug_enabled
from .camera import Intrinsics, camera_record
from .media import ImageTooLarge, VideoReader, decode_image, is_image, is_video
from .outputs import (
    OutputOptions,
    VideoSink,
    image_paths,
    video_paths,
    write_image_outputs,
)
from .predictor import Prediction, Predictor
from .threads import BackgroundWorker, Prefetch

# -- inputs and output names --------------------------------------------------------------


@dataclass
class Job:
    path: Path
    kind: str  # "image" or "video"
    stem: Path  # OUT/relative/NAME
    paths: dict[str, Path]


def _sniff(path: Path) -> str | None:
    """Kind of a file with an unfamiliar suffix, from its content."""
    try:
        with Image.open(path):
            return "image"
    except (UnidentifiedImageError, OSError, ValueError):
        pass
    try:
        with VideoReader(path, max_pixels=None):  # its size is judged when it is read
            return "video"
    except InputError:
        return None


def collect_inputs(inputs: Sequence[str], recursive: bool,
                   exclude: Path | None = None) -> tuple[list[tuple[Path, str, Path]], list[str]]:
    """``(file, kind, relative stem)`` for every input, and one-line problems for bad paths.

    Files inside ``exclude`` (the output folder) are never taken from folders, so a
    re-run with the output folder inside an input folder does not predict on its own results.
    """
    found: list[tuple[Path, str, Path]] = []
    problems: list[str] = []
    skip = exclude.resolve() if exclude is not None else None
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            pattern = path.rglob("*") if recursive else path.glob("*")
            files = sorted(p for p in pattern if p.is_file() and not p.name.startswith(".")
                           and (is_image(p) or is_video(p))
                           and not (skip is not None and p.resolve().is_relative_to(skip)))
            if not files:
                hint = "" if recursive else " (use --recursive for sub-folders)"
                problems.append(f"{path}: folder contains no images or videos{hint}")
            for f in files:
                rel = f.relative_to(path)
                found.append((f, "video" if is_video(f) else "image", rel.with_suffix("")))
        elif path.is_file():
            kind = "image" if is_image(path) else "video" if is_video(path) else _sniff(path)
            if kind is None:
                problems.append(f"{path}: not an image or a video (unrecognised format)")
            else:
                found.append((path, kind, Path(path.stem)))
        elif path.exists():
            problems.append(f"{path}: not a regular file or folder")
        else:
            problems.append(f"{path}: no such file or folder")
    return found, problems


def plan_jobs(found: list[tuple[Path, str, Path]], out: Path, opts: OutputOptions,
              has_depth: bool) -> list[Job]:
    """Output stems for every input; inputs with equal names get their suffix, then a number."""
    jobs: list[Job] = []
    used: set[Path] = set()
    seen_files: set[Path] = set()
    counts: dict[Path, int] = {}
    for _, _, rel in found:
        counts[rel] = counts.get(rel, 0) + 1
    for path, kind, rel in found:
        resolved = path.resolve()
        if resolved in seen_files:
            continue  # named twice (directly and through a folder)
        seen_files.add(resolved)
        if counts[rel] > 1:
            rel = rel.with_name(f"{rel.name}_{path.suffix.lstrip('.').lower()}")
        stem, n = out / rel, 2
        while stem in used:
            stem = out / rel.with_name(f"{rel.name}-{n}")
            n += 1
        used.add(stem)
        paths = video_paths(stem, opts) if kind == "video" else image_paths(stem, opts, has_depth)
        jobs.append(Job(path, kind, stem, paths))
    return jobs


# -- running ------------------------------------------------------------------------------


@dataclass
class Stats:
    images: int = 0
    videos: int = 0
    frames: int = 0
    failed: int = 0
    exif_cameras: int = 0  # images whose depth used the camera of their EXIF focal length


def report_error(message: str) -> None:
    """One line on stderr that does not break a progress bar."""
    tqdm.write(f"hydranet: error: {message}", file=sys.stderr)


def read_image_job(job: Job, opts: OutputOptions) -> tuple[np.ndarray, OutputOptions, Intrinsics | None]:
    """Decode an image input: ``(image, the options for it, its own camera or None)``.

    Its own camera is the stated one rescaled when the image was read reduced, or, when no
    camera was stated, the one its EXIF focal length gives (``OutputOptions.exif_camera``).
    """
    try:
        decoded = decode_image(job.path, opts.max_pixels, opts.downscale_large)
    except ImageTooLarge as exc:
        if opts.downscale_large:
            raise
        raise InputError(f"{exc}, or pass --downscale-large to read it reduced") from None
    camera = None
    if decoded.reduced:
        (h0, w0), (h, w) = decoded.original_size, decoded.image.shape[:2]
        limit = f"{opts.max_pixels / 1e6:.3g} Mpx" if opts.max_pixels else "pixel"
        tqdm.write(f"note: {job.path}: {w0}x{h0} is over the {limit} limit; read reduced to {w}x{h} "
                   "(--downscale-large), and so are its outputs")
        if opts.intrinsics is not None:  # the camera as stated is the full-size image's
            full = opts.intrinsics if opts.intrinsics.size else replace(opts.intrinsics, size=(h0, w0))
            camera = full.scaled_to(h, w)
    if opts.intrinsics is None and opts.exif_camera:
        camera = decoded.camera
        if camera is not None and "camera" in opts.extra:
            opts = replace(opts, extra={**opts.extra, "camera": camera_record(camera, "EXIF FocalLengthIn35mmFilm")})
    if camera is not None:
        if decoded.reduced and "camera" in opts.extra and opts.intrinsics is not None:
            opts = replace(opts, extra={**opts.extra, "camera": camera_record(camera, opts.extra["camera"]["source"])})
        opts = replace(opts, intrinsics=camera)
    return decoded.image, opts, camera


def _run_images(images: Sequence[Job], predictor: Predictor, opts: OutputOptions,
                on_error: Callable[[str], None], stats: Stats) -> None:
    """Images read ahead in one thread and written behind in another, the network in between.

    Decoding a PNG and rendering + encoding a panel take longer than the network on the
    fast engines, so run one after the other they would set the pace. One bad input is
    reported and the others go on; an interruption finishes the outputs already predicted.
    """
    def read(job: Job) -> tuple[Job, Any, BaseException | None]:
        try:
            image, job_opts, camera = read_image_job(job, opts)
            # Normalising here too keeps the inference loop on nothing but the network.
            return job, (image, job_opts, camera, predictor.prepare(image, camera)[None]), None
        except Exception as exc:  # reported in order by the consumer
            return job, None, exc

    def failed(job: Job, exc: BaseException) -> None:
        stats.failed += 1
        _debug_traceback(exc)
        on_error(describe_failure(job.path, exc))

    def write(item: tuple) -> None:
        job, image, job_opts, camera, outputs = item
        try:
            pred = predictor.finish(image, outputs, 0, intrinsics=camera)
            write_image_outputs(pred, job.paths, job_opts, source=str(job.path))
            stats.images += 1
            stats.frames += 1
            stats.exif_cameras += camera is not None and opts.intrinsics is None
        except Exception as exc:  # one bad output never stops the run
            failed(job, exc)
        bar.update()

    bar = tqdm(total=len(images), unit="image", desc="images", disable=None if len(images) > 1 else True,
               dynamic_ncols=True)
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the three stages share the cores with the network's own threads
    try:
        with Prefetch((read(job) for job in images), maxsize=4) as decoded, \
                BackgroundWorker(write, maxsize=3) as writer:
            batch_of = (lambda d: None if d[2] is not None else d[1][3])
            for (job, read_result, error), outputs, exc in predictor.infer_many(decoded, batch_of):
                if error is not None or exc is not None:
                    failed(job, error or exc)
                    bar.update()
                    continue
                image, job_opts, camera, _ = read_result
                writer.submit((job, image, job_opts, camera, outputs))
    finally:
        cv2.setNumThreads(cv_threads)
        bar.close()


def process_video(job: Job, predictor: Predictor, opts: OutputOptions, every: int,
                  on_frame: Callable[[int, Prediction, Intrinsics | None], None] | None = None,
                  max_frames: int | None = None, full_resolution: bool = False) -> tuple[int, str | None]:
    """Predict every ``every``-th frame; ``(frames written, problem or None)``.

    Decoding runs in one background thread and rendering + encoding in another, so they
    overlap with the network. A damaged video keeps the frames decoded before the damage
    and reports the damage as its problem. ``on_frame(index, prediction, camera)`` is called (in
    the render thread) after each frame is written, e.g. to report progress; ``camera`` is the
    file's own (QuickTime) camera when the depth used it, else None. An exception it
    raises stops the video, whose outputs are still closed properly. ``max_frames`` stops
    after that many predicted frames. Predictions are made at the resolution the outputs
    need (:meth:`VideoSink.prediction_size`: a default panel video needs half the frame's);
    ``full_resolution`` gives ``on_frame`` every frame's full-resolution prediction.
    """
    reader = VideoReader(job.path, max_pixels=opts.max_pixels)
    fps = reader.fps / every
    source = reader.frames(every)
    camera = None
    stated = opts.intrinsics is not None or opts.hfov is not None or predictor.intrinsics is not None
    if not stated and opts.exif_camera and reader.focal_35mm is not None:
        # The camera follows the upright frame's shape, known once the first frame is decoded.
        first = next(source, None)
        if first is not None:
            source = itertools.chain([first], source)
            camera = reader.camera_for(*first[1].shape[:2])
            extra = opts.extra
            if "camera" in extra:
                extra = {**extra, "camera": camera_record(camera, "QuickTime camera.focal_length.35mm_equivalent")}
            opts = replace(opts, intrinsics=camera, extra=extra)
    sink = VideoSink(job.paths, fps, opts, source=str(job.path), every=every, source_fps=reader.fps)
    total = -(-reader.expected_frames // every) if reader.expected_frames else None
    model_s0, setup0, start = predictor.model_seconds, predictor.setup_seconds, time.perf_counter()
    bar = tqdm(total=total, unit="frame", desc=job.path.name, leave=False, dynamic_ncols=True,
               disable=None)

    def finish(item: tuple) -> None:
        index, frame, outputs = item
        size = None if full_resolution else sink.prediction_size(frame.shape[:2])
        pred = predictor.finish(frame, outputs, size=size, intrinsics=camera)
        sink.write(index, pred)
        bar.update()
        if on_frame is not None:
            on_frame(index, pred, camera)

    # The stages run side by side; OpenCV's own worker threads would only compete with the
    # network's for the same cores.
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        if max_frames is not None:
            source = itertools.islice(source, max_frames)
        # Frames are normalised in the decoding thread, so the loop runs nothing but the network.
        prepared = ((index, frame, predictor.prepare(frame, camera)[None]) for index, frame in source)
        with Prefetch(prepared, maxsize=4) as frames, \
                BackgroundWorker(finish, maxsize=3) as worker:
            for (index, frame, _), outputs, exc in predictor.infer_many(frames, lambda f: f[2]):
                if exc is not None:
                    raise exc
                worker.submit((index, frame, outputs))
    finally:
        cv2.setNumThreads(cv_threads)
        bar.close()
        try:
            sink.close()
        finally:
            reader.close()
    written = len(sink.frames)
    # Making engines for a new size is reported once by the caller, not charged to this video's rate.
    seconds = time.perf_counter() - start - (predictor.setup_seconds - setup0)
    model_ms = 1000 * (predictor.model_seconds - model_s0) / written if written else 0.0
    targets = ", ".join(str(p) for p in sink.written()) or f"{job.stem}_*"
    from_file = f"; camera from the file's {reader.focal_35mm:g} mm equivalent focal length" if camera else ""
    print(f"{job.path}: {written} frames at {float(fps):.4g} fps -> {targets}; model "
          f"{model_ms:.1f} ms/frame, end to end {written / seconds if seconds else 0:.1f} frames/s{from_file}")
    return written, (f"{job.path}: {reader.error}" if reader.error else None)


def describe_failure(path: Path, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, HydranetError):
        return text if str(path) in text else f"{path}: {text}"
    return f"{path}: {type(exc).__name__}: {text}"


def _debug_traceback(exc: BaseException | None = None) -> None:
    if debug_enabled():  # hydranet --debug: the failure's traceback above its one line
        if exc is None:
            traceback.print_exc(file=sys.stderr)
        else:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def run_jobs(jobs: Sequence[Job], predictor: Predictor, opts: OutputOptions, every: int = 1,
             on_error: Callable[[str], None] = report_error, stats: Stats | None = None) -> Stats:
    """Images first, then videos; one bad input is reported through ``on_error`` and skipped."""
    stats = stats or Stats()
    images = [j for j in jobs if j.kind == "image"]
    videos = [j for j in jobs if j.kind == "video"]
    if images:
        _run_images(images, predictor, opts, on_error, stats)
    for job in videos:
        try:
            written, problem = process_video(job, predictor, opts, every)
        except Exception as exc:
            stats.failed += 1
            _debug_traceback()
            on_error(describe_failure(job.path, exc))
            continue
        stats.frames += written
        stats.videos += 1
        if problem:
            stats.failed += 1
            on_error(problem)
    return stats
