"""Unlabelled driving video for self-supervised depth: frame tuples with the camera.

``root`` is a video file (decoded once into a frame cache) or a folder of consecutive frames
(sorted by name, ``pattern`` selects them, e.g. ``*_left.png``). Each item is the frame ``t``
as ``image`` and, under ``video``, its neighbours at ``offsets`` (default t-1 and t+1), the
camera matrix ``intrinsics`` for the frames' size, and with ``stereo`` the other camera's frame
``right`` and the signed ``baseline`` (metres; the right camera sits at +x). No segmentation,
no depth: the view-synthesis loss (:mod:`hydranet.training.view_synthesis`) is what they teach.

The camera: ``intrinsics: [fx, fy, cx, cy]`` (pixels of the frames as stored), or ``calib:``
a KITTI ``calib.txt`` / ``calib_cam_to_cam.txt`` or an ORB-SLAM-style YAML (``Camera.fx`` ...,
``Camera.bf`` gives the stereo baseline), or else a horizontal field of view ``hfov``
(default 60 degrees, the value ``hydranet predict`` assumes; stated in the training log).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...errors import InputError
from ...inference.camera import ASSUMED_HFOV_DEG
from ..sample import Sample
from .base import IMAGE_SUFFIXES, read_rgb

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


def frame_cache_dir() -> Path:
    """Where decoded videos are kept: ``$HYDRANET_HOME/video_frames``, else ``~/.cache/hydranet/video_frames``."""
    if os.environ.get("HYDRANET_HOME"):
        return Path(os.environ["HYDRANET_HOME"]) / "video_frames"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hydranet" / "video_frames"


def decode_to_frames(video: Path, every: int = 1, max_frames: int | None = None,
                     cache: Path | None = None) -> list[Path]:
    """The frames of ``video`` as JPEG files in a cache folder keyed by the file's path, size and date."""
    from ...inference.media import VideoReader

    stat = video.stat()
    key = hashlib.sha256(f"{video.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{every}:{max_frames}"
                         .encode()).hexdigest()[:16]
    folder = (cache or frame_cache_dir()) / f"{video.stem}-{key}"
    done = folder / "complete"
    if done.is_file():
        return sorted(folder.glob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with VideoReader(video) as reader:
        for index, frame in reader.frames(every):
            if max_frames is not None and count >= max_frames:
                break
            path = folder / f"{index:07d}.jpg"
            tmp = folder / f".{index:07d}.tmp.jpg"
            if not cv2.imwrite(str(tmp), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise InputError(f"{tmp}: cannot write a decoded frame; free disk space or set HYDRANET_HOME")
            tmp.replace(path)
            count += 1
    if reader.error and count == 0:
        raise InputError(f"{video}: {reader.error}")
    done.write_text(f"{count}\n")
    return sorted(folder.glob("*.jpg"))


def read_camera_file(path: Path) -> tuple[np.ndarray, float | None]:
    """``(K, baseline or None)`` from a KITTI calibration or an ORB-SLAM-style camera YAML."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the camera file ({exc.strerror or exc})") from None
    values: dict[str, float] = {}
    for key in ("fx", "fy", "cx", "cy", "bf"):
        m = re.search(rf"^\s*Camera\d?\.{key}\s*:\s*([-+0-9.eE]+)", text, re.MULTILINE)
        if m:
            values[key] = float(m.group(1))
    if all(k in values for k in ("fx", "fy", "cx", "cy")):
        k = np.array([[values["fx"], 0, values["cx"]], [0, values["fy"], values["cy"]], [0, 0, 1]])
        baseline = values["bf"] / values["fx"] if "bf" in values else None
        return k, baseline
    from ...inference.pointcloud import read_kitti_calib

    cam = read_kitti_calib(path)
    return np.array([[cam.fx, 0, cam.cx], [0, cam.fy, cam.cy], [0, 0, 1]]), None


class VideoFrames:
    """Consecutive frames of one drive as view-synthesis samples (see the module docstring)."""

    label_set = None

    def __init__(self, root: str | Path, offsets: Sequence[int] = (-1, 1), pattern: str | None = None,
                 intrinsics: Sequence[float] | None = None, calib: str | Path | None = None,
                 hfov: float | None = None, stereo: str | Sequence[str] | None = None,
                 baseline: float | None = None, every: int = 1, max_frames: int | None = None,
                 split: str | None = None, on_bad_label: str = "error", **unused: Any) -> None:
        if unused:
            raise InputError(f"dataset video: unknown option(s) {', '.join(sorted(unused))}; known: offsets, "
                             "pattern, intrinsics, calib, hfov, stereo, baseline, every, max_frames")
        self.root = Path(root).expanduser()
        self.offsets = tuple(int(o) for o in offsets)
        if not self.offsets or 0 in self.offsets:
            raise InputError(f"dataset video {self.root}: offsets must be non-zero frame steps such as "
                             f"[-1, 1], got {list(offsets)}")
        if self.root.is_file() and self.root.suffix.lower() in VIDEO_SUFFIXES:
            self.frames = decode_to_frames(self.root, max(int(every), 1), max_frames)
        elif self.root.is_dir():
            glob = pattern or "*"
            self.frames = sorted(p for p in self.root.glob(glob)
                                 if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if stereo is not None and pattern is None:
                raise InputError(f"dataset video {self.root}: with stereo, give pattern (e.g. '*_left.png') "
                                 "so the right frames are not taken as the drive")
            self.frames = self.frames[::max(int(every), 1)][:max_frames]
        else:
            raise InputError(f"{self.root}: not a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder of frames; "
                             "fix the dataset's root")
        lo, hi = min(0, *self.offsets), max(0, *self.offsets)
        self.targets = list(range(-lo, len(self.frames) - hi))
        if not self.targets:
            raise InputError(f"dataset video {self.root}: {len(self.frames)} frame(s) are too few for offsets "
                             f"{list(self.offsets)}; a tuple needs {hi - lo + 1}")
        file_k, file_baseline = (read_camera_file(Path(calib).expanduser()) if calib else (None, None))
        if intrinsics is not None:
            fx, fy, cx, cy = (float(v) for v in intrinsics)
            if fx <= 0 or fy <= 0:
                raise InputError(f"dataset video {self.root}: intrinsics need positive focal lengths, got "
                                 f"{list(intrinsics)}")
            file_k = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
        first = read_rgb(self.frames[0])
        self.size = first.shape[:2]
        self.assumed_camera = file_k is None
        if file_k is None:
            h, w = self.size
            angle = float(hfov) if hfov is not None else ASSUMED_HFOV_DEG
            f = (w / 2) / math.tan(math.radians(angle) / 2)
            file_k = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
        self.intrinsics = np.asarray(file_k, np.float64)
        self.stereo = (stereo, ) if isinstance(stereo, str) else tuple(stereo) if stereo else None
        self.baseline = float(baseline) if baseline is not None else file_baseline
        if self.stereo is not None:
            if len(self.stereo) != 2:
                raise InputError(f"dataset video {self.root}: stereo is [left text, right text] of the file "
                                 f"names, e.g. [_left, _right], got {list(self.stereo)}")
            if not self.baseline or self.baseline <= 0:
                raise InputError(f"dataset video {self.root}: stereo needs the baseline in metres "
                                 "(baseline: 0.54, or a calib file with Camera.bf)")

    def describe(self) -> str:
        camera = ("assumed " if self.assumed_camera else "") + f"fx {self.intrinsics[0, 0]:.1f}"
        return (f"video {self.root}: {len(self.frames)} frames, {len(self.targets)} tuples "
                f"(offsets {list(self.offsets)}), camera {camera}"
                + (f", stereo baseline {self.baseline:.3f} m" if self.stereo else ""))

    def __len__(self) -> int:
        return len(self.targets)

    def _right_of(self, frame: Path) -> Path | None:
        assert self.stereo is not None
        left, right = self.stereo
        if left not in frame.name:
            return None
        path = frame.with_name(frame.name.replace(left, right))
        return path if path.is_file() else None

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self.targets):
            raise IndexError(f"tuple {index} out of range 0..{len(self.targets) - 1}")
        t = self.targets[index]
        image = read_rgb(self.frames[t])
        neighbours = [read_rgb(self.frames[t + o]) for o in self.offsets]
        for path, frame in zip([self.frames[t + o] for o in self.offsets], neighbours):
            if frame.shape != image.shape:
                raise InputError(f"{path}: size {frame.shape[:2]} differs from {self.frames[t]} "
                                 f"{image.shape[:2]}; a drive's frames must share one size")
        h, w = image.shape[:2]
        k = self.intrinsics.copy()
        if (h, w) != tuple(self.size):
            k[0] *= w / self.size[1]
            k[1] *= h / self.size[0]
        video: dict[str, Any] = {"target": image, "neighbours": neighbours, "offsets": list(self.offsets),
                                 "intrinsics": k}
        if self.stereo is not None:
            right = self._right_of(self.frames[t])
            if right is not None:
                video["right"] = read_rgb(right)
                video["baseline"] = float(self.baseline)  # type: ignore[arg-type]
        return {"image": image, "video": video, "focal": float(k[0, 0]), "name": self.frames[t].stem}


__all__ = ["VIDEO_SUFFIXES", "VideoFrames", "decode_to_frames", "frame_cache_dir", "read_camera_file"]
