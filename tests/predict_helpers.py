"""Shared helpers of the predict tests: pictures and videos the tests make (fixtures: conftest.py)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

H, W = 64, 96


def scene(height: int = H, width: int = W, seed: int = 0) -> np.ndarray:
    """A smooth synthetic RGB picture (gradients + blocks) that compresses like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                    (x + y) * 127 // max(width + height - 2, 1)], axis=2).astype(np.uint8)
    for _ in range(3):
        r, c = rng.integers(0, height // 2), rng.integers(0, width // 2)
        img[r: r + height // 3, c: c + width // 3] = rng.integers(0, 256, 3)
    return img


def make_video(path: Path, n: int, fps: Fraction = Fraction(25), height: int = H, width: int = W,
               codec: str = "libx264", options: dict | None = None) -> list[np.ndarray]:
    """Write ``n`` moving frames with PyAV; returns the frames."""
    frames = [np.roll(scene(height, width, seed=1), 4 * i, axis=1) for i in range(n)]
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frames


def video_info(path: Path) -> tuple[int, Fraction, tuple[int, int]]:
    """(decoded frame count, average rate, (height, width)) of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return len(frames), stream.average_rate, frames[0].shape[:2]
