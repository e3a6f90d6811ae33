"""End-to-end video throughput: what `hydranet predict clip.mp4` achieves against the model alone.

End to end is the predict command's own video path (``hydranet.inference.runner.process_video``):
decode (PyAV), normalise, run the backend, resize logits and depth back (bicubic), argmax,
render the chosen pictures and encode them (H.264), with decoding and rendering/encoding in
background threads. Model-only is the same backend instance on the same decoded frames,
batch 1, nothing else. Both are measured alternately ``repeats`` times; medians are reported.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..export.calibration import street_scene
from ..model import HydraNet


@dataclass
class VideoResult:
    """Frames per second end to end and model-only, for one backend on one clip."""

    engine: str
    height: int
    width: int
    frames: int
    save: str
    e2e_fps: float
    model_fps: float
    e2e_runs: list[float] = field(default_factory=list)
    model_runs: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.e2e_fps / self.model_fps if self.model_fps else float("nan")


def write_clip(path: Path, frames: int, size: tuple[int, int], fps: int = 30, seed: int = 0) -> Path:
    """A generated drive: a camera panning across a wide street scene, H.264 MP4."""
    from ..inference.media import VideoWriter

    h, w = size
    step = 4
    scene = street_scene((h, w + step * frames), seed)
    with VideoWriter(path, Fraction(fps)) as writer:
        for i in range(frames):
            writer.write(np.ascontiguousarray(scene[:, i * step: i * step + w]))
    return path


def make_predictor(model: HydraNet, backend: str, options: dict[str, Any]):
    """A ``Predictor`` for ``model`` on ``backend`` (the predict command's object)."""
    from ..inference.predictor import Predictor

    return Predictor(model, backend=backend, **options)


def model_only_fps(predictor, frames: list[np.ndarray]) -> float:
    """Frames per second of the backend alone on pre-normalised frames, batch 1, as many in
    flight as the predict command keeps (``Predictor.infer_many``)."""
    inputs = [predictor.prepare(f)[None] for f in frames]
    for _ in predictor.infer_many(inputs[:4], lambda x: x):
        pass
    start = time.perf_counter()
    for _, _, error in predictor.infer_many(inputs, lambda x: x):
        if error is not None:
            raise error
    return len(inputs) / (time.perf_counter() - start)


def end_to_end_fps(predictor, clip: Path, out_dir: Path, save: str) -> tuple[float, int]:
    """Frames per second of the predict command's video path, and the frames it wrote."""
    from ..inference.outputs import OutputOptions, video_paths
    from ..inference.runner import Job, process_video

    opts = OutputOptions(save=tuple(save.split(",")), video_formats=("mp4",),
                         model_name=predictor.config.name, label_set=predictor.config.label_set)
    job = Job(clip, "video", out_dir / clip.stem, {})
    job.paths = video_paths(job.stem, opts)
    for path in job.paths.values():
        path.unlink(missing_ok=True)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # process_video prints its own summary
        written, problem = process_video(job, predictor, opts, every=1)
    seconds = time.perf_counter() - start
    if problem:
        raise RuntimeError(problem)
    return written / seconds, written


def measure_video(model: HydraNet, engine: str, backend: str, options: dict[str, Any],
                  size: tuple[int, int], frames: int = 90, save: str = "panel",
                  repeats: int = 3) -> VideoResult:
    """Alternate end-to-end and model-only runs on a generated clip; medians of ``repeats``."""
    from ..inference.media import read_video

    with tempfile.TemporaryDirectory(prefix="hydranet-bench-video-") as tmp:
        clip = write_clip(Path(tmp) / "drive.mp4", frames, size)
        decoded = read_video(clip)[1]
        predictor = make_predictor(model, backend, options)
        end_to_end_fps(predictor, clip, Path(tmp), save)  # warm-up: compile, allocate, open codecs
        e2e, model_runs = [], []
        for _ in range(max(1, repeats)):
            e2e.append(end_to_end_fps(predictor, clip, Path(tmp), save)[0])
            model_runs.append(model_only_fps(predictor, decoded))
    return VideoResult(engine, size[0], size[1], frames, save, float(np.median(e2e)),
                       float(np.median(model_runs)), [round(v, 2) for v in e2e],
                       [round(v, 2) for v in model_runs])
