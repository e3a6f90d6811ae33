"""Seeded mutation fuzzing of what hydranet reads: image files, videos, weights files and configs.

    python tools/fuzz.py --cases 10000 [--seed 0]

Every mutated input must either be read or be refused with a hydranet error (one line, the
file named); anything else (another exception type, a crash, a hang) is a failure. The test
suite runs a few hundred cases of the same code (tests/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import hydranet
from hydranet.errors import HydranetError

KINDS = ("image", "weights", "config", "video")


def _flip(data: bytes, rng: np.random.Generator, count: int) -> bytes:
    out = bytearray(data)
    for _ in range(count):
        choice = rng.integers(0, 4)
        i = int(rng.integers(0, max(1, len(out))))
        if choice == 0 and out:
            out[i] ^= 1 << int(rng.integers(0, 8))
        elif choice == 1 and out:
            out[i] = int(rng.integers(0, 256))
        elif choice == 2:
            del out[i:i + int(rng.integers(1, 64))]
        else:
            out[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8))
    return bytes(out)


def seeds(folder: Path) -> dict[str, bytes]:
    """The valid inputs the mutations start from."""
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    png, jpg = io.BytesIO(), io.BytesIO()
    Image.fromarray(image).save(png, format="PNG")
    Image.fromarray(image).save(jpg, format="JPEG")
    torch_model = hydranet.model.hydranet(3, encoder="mobilenetv2")
    torch_model.config.decoder_channels = 256
    weights = hydranet.save_weights(torch_model, folder / "seed.safetensors").read_bytes()
    config = (b"data:\n  train: [{type: folder, root: /nonexistent}]\nsteps: 10\nbatch_size: 2\n"
              b"optim: {name: adamw, lr_decoder: 0.001}\nmodel: {factory: camvid11}\n")
    return {"png": png.getvalue(), "jpg": jpg.getvalue(), "weights": weights, "config": config,
            "video": _phone_video(folder / "seed.mov")}


def _phone_video(path: Path) -> bytes:
    """A 4-frame H.264 MOV with the QuickTime focal-length key an iPhone writes in its video track."""
    import struct

    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        rng = np.random.default_rng(1)
        for _ in range(4):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    data = bytearray(path.read_bytes())

    def atom(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(payload), kind) + payload

    key = b"com.apple.quicktime.camera.focal_length.35mm_equivalent"
    meta = atom(b"meta", atom(b"keys", struct.pack(">II", 0, 1) + atom(b"mdta", key))
                + atom(b"ilst", atom(struct.pack(">I", 1), atom(b"data", struct.pack(">II", 21, 0) + b"\x1a"))))
    moov = data.index(b"moov") - 4  # PyAV writes moov last: growing it moves no sample offset
    trak = data.index(b"trak", moov) - 4
    trak_end = trak + struct.unpack_from(">I", data, trak)[0]
    struct.pack_into(">I", data, trak, trak_end - trak + len(meta))
    struct.pack_into(">I", data, moov, len(data) - moov + len(meta))
    return bytes(data[:trak_end]) + meta + bytes(data[trak_end:])


def one_case(kind: str, data: bytes, folder: Path, index: int) -> str | None:
    """None when the input was read or refused properly, else what went wrong."""
    from hydranet.inference.media import VideoReader, read_image
    from hydranet.training.config import load_config

    suffix = {"image": ".png", "weights": ".safetensors", "config": ".yaml", "video": ".mov"}[kind]
    path = folder / f"case{index}{suffix}"
    path.write_bytes(data)
    try:
        if kind == "image":
            image = read_image(path)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                return f"read_image returned {image.dtype} {image.shape}"
        elif kind == "weights":
            hydranet.load_model(path)
        elif kind == "video":
            with VideoReader(path) as reader:  # damage ends the frames and is said in .error
                frames = list(reader)
                if any(f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3 for f in frames):
                    return "VideoReader yielded a frame that is not uint8 RGB"
                if reader.error is not None and "\n" in reader.error:
                    return f"video error over several lines: {reader.error[:200]!r}"
                if reader.focal_35mm is not None and not 10 <= reader.focal_35mm <= 800:
                    return f"implausible focal length {reader.focal_35mm} passed"
        else:
            load_config(path)
    except HydranetError as exc:
        text = str(exc)
        if "\n" in text:
            return f"{type(exc).__name__} over several lines: {text[:200]!r}"
    except Exception as exc:  # noqa: BLE001 - the point is to see every other kind
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        path.unlink(missing_ok=True)
    return None


def run(cases: int, seed: int = 0, folder: Path | None = None) -> list[str]:
    """``cases`` mutated inputs (a quarter of each kind); the problems found."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(folder or tmp)
        base = seeds(work)
        rng = np.random.default_rng(seed)
        for i in range(cases):
            kind = KINDS[i % len(KINDS)]
            source = base[("png", "jpg")[i // len(KINDS) % 2]] if kind == "image" else base[kind]
            count = int(rng.integers(1, 12))
            if kind == "weights" and rng.random() < 0.7:
                # Most interesting bytes are in the JSON header: mutate there.
                head_len = int.from_bytes(source[:8], "little") + 8
                data = source[:8] + _flip(source[8:head_len], rng, count) + source[head_len:]
            elif kind == "video" and rng.random() < 0.6:
                # The movie header (last, where the atoms and the camera key are): mutate there.
                moov = source.rindex(b"moov") - 4
                data = source[:moov] + _flip(source[moov:], rng, count)
            else:
                data = _flip(source, rng, count)
            problem = one_case(kind, data, work, i)
            if problem:
                problems.append(f"case {i} ({kind}): {problem}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    problems = run(args.cases, args.seed)
    for p in problems[:50]:
        print(p)
    print(f"{args.cases} cases, {len(problems)} problems, {time.perf_counter() - start:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
