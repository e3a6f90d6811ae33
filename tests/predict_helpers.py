"""Shared helpers of the predict tests: a small random model on disk and media the tests make."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import hydranet

H, W = 64, 96


@pytest.fixture(scope="session")
def small_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random KITTI-6 model saved with ``save_weights`` (no ../shared needed).

    Random BatchNorm statistics (as in the parity checkpoint) make the labels vary across
    the image; the depth head is rescaled to about 20 +- 5 m so depth tests cover real metres.
    """
    torch.manual_seed(0)
    model = hydranet.create_model("kitti6").eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
        depth = model(hydranet.preprocess(scene()))["depth"]
        scale = 5.0 / float(depth.std())
        model.depth.weight.mul_(scale)
        model.depth.bias.copy_((model.depth.bias - float(depth.mean())) * scale + 20.0)
    return hydranet.save_weights(model, tmp_path_factory.mktemp("weights") / "small.safetensors")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Other jobs share the 2 cores; one intra-op thread is much faster than 2 under load."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
