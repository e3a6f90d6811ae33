"""Shared helpers of the predict tests: pictures and videos the tests make (fixtures: conftest.py)."""

from __future__ import annotations

import struct
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


def qt_meta(items: dict[str, tuple[int, bytes]], iso: bool = False) -> bytes:
    """A QuickTime ``meta`` atom: ``keys`` (mdta names) and ``ilst`` with one ``data`` atom per key,
    ``{key: (data type, value bytes)}``; ``iso``: with the version/flags word an ISO meta has."""
    def atom(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(payload), kind) + payload

    keys = struct.pack(">II", 0, len(items)) + b"".join(atom(b"mdta", k.encode()) for k in items)
    ilst = b"".join(atom(struct.pack(">I", i), atom(b"data", struct.pack(">II", t, 0) + v))
                    for i, (t, v) in enumerate(items.values(), start=1))
    hdlr = atom(b"hdlr", bytes(8) + b"mdta" + bytes(13))
    return atom(b"meta", (bytes(4) if iso else b"") + hdlr + atom(b"keys", keys) + atom(b"ilst", ilst))


def add_to_video_track(path: Path, extra: bytes) -> None:
    """Append atoms to the first ``trak`` of a MOV / MP4 whose ``moov`` follows its media data
    (PyAV's default), growing ``trak`` and ``moov``: no sample offset moves."""
    data = bytearray(path.read_bytes())
    pos = 0
    while data[pos + 4:pos + 8] != b"moov":
        pos += struct.unpack_from(">I", data, pos)[0]
    moov = pos
    assert moov + struct.unpack_from(">I", data, moov)[0] == len(data), "moov must end the file"
    pos = moov + 8
    while data[pos + 4:pos + 8] != b"trak":
        pos += struct.unpack_from(">I", data, pos)[0]
    trak_end = pos + struct.unpack_from(">I", data, pos)[0]
    struct.pack_into(">I", data, pos, trak_end - pos + len(extra))
    struct.pack_into(">I", data, moov, len(data) - moov + len(extra))
    path.write_bytes(bytes(data[:trak_end]) + extra + bytes(data[trak_end:]))
