"""End-to-end video throughput of ``hydranet predict`` against the network alone.

    python benchmarks/predict_video.py [--weights default] [--video drive.mp4] [--size 360x480]
        [--frames 300] [--backend auto] [--save panel] [--video-format mp4]

The defaults are what `hydranet predict clip.mp4` runs with no options.

Model-only: the frames are decoded and normalised first, then only the backend calls are
timed, batch 1 with as many frames in flight as the command keeps (one per core and
one waiting on OpenVINO); the rate one frame at a time is printed beside it. End to end: the whole ``predict`` path on the same
video — decoding, normalisation, network, bicubic resize + argmax, rendering, H.264/GIF
encoding — timed from opening the file to closing the outputs. The goal is an end-to-end
rate of at least 80% of the model-only rate. Without --video a synthetic clip of moving
shapes is written first (content does not change the network's cost). The stages are also
timed one after another on one OpenCV thread, as the pipeline runs them; their sum is the
core time the pipeline adds to the network's (the encoder's opening is included).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from hydranet.inference.runner import Job, process_video
from hydranet.inference.media import VideoReader, VideoWriter
from hydranet.inference.outputs import OutputOptions, video_paths
from hydranet.inference.predictor import Predictor


def synthetic_video(path: Path, frames: int, height: int, width: int) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], 2).astype(np.uint8)
    boxes = [(rng.integers(0, height - 60), rng.integers(0, width - 120), rng.integers(0, 256, 3))
             for _ in range(12)]
    with VideoWriter(path, Fraction(10)) as writer:
        for i in range(frames):
            frame = base.copy()
            for r, c, colour in boxes:
                c = (c + 7 * i) % (width - 120)
                frame[r: r + 60, c: c + 120] = colour
            writer.write(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="default")
    parser.add_argument("--video", type=Path)
    parser.add_argument("--size", default="360x480", help="synthetic clip size HxW")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, help="backend threads (default: the backend's)")
    parser.add_argument("--save", default="panel")
    parser.add_argument("--video-format", default="mp4")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hydranet-bench-") as tmp:
        video = args.video
        if video is None:
            h, w = (int(v) for v in args.size.split("x"))
            video = Path(tmp) / "clip.mp4"
            synthetic_video(video, args.frames, h, w)
        options = {"threads": args.threads} if args.threads else {}
        predictor = Predictor(args.weights, backend=args.backend, **options)
        stages: dict[str, float] = {}
        cv2.setNumThreads(1)  # as process_video runs its stages, so their times add up to its core time
        start = time.perf_counter()
        with VideoReader(video) as reader:
            frames = list(reader)
        stages["decode"] = time.perf_counter() - start
        start = time.perf_counter()
        inputs = [predictor.prepare(f)[None] for f in frames]
        stages["normalise"] = time.perf_counter() - start
        for _ in predictor.infer_many(inputs[:4], lambda x: x):  # warm-up: allocate, pick kernels
            pass
        start = time.perf_counter()
        outputs = [out for _, out, _ in predictor.infer_many(inputs, lambda x: x)]
        model_fps = len(inputs) / (time.perf_counter() - start)
        for x in inputs[:3]:
            predictor.infer(x)
        start = time.perf_counter()
        for x in inputs:
            predictor.infer(x)
        latency_fps = len(inputs) / (time.perf_counter() - start)

        opts = OutputOptions(save=tuple(args.save.split(",")),
                             video_formats=tuple(args.video_format.split(",")))
        # The other stages one after another, for their cost per frame.
        from hydranet.inference.outputs import VideoSink
        start = time.perf_counter()
        sink = VideoSink(video_paths(Path(tmp) / "stages" / "clip", opts), reader.fps, opts)
        preds = [predictor.finish(f, o, size=sink.prediction_size(f.shape[:2]))
                 for f, o in zip(frames, outputs)]
        stages["resize+argmax"] = time.perf_counter() - start
        start = time.perf_counter()
        for i, p in enumerate(preds):
            sink.write(i, p)
        sink.close()
        stages["render+encode"] = time.perf_counter() - start
        job = Job(video, "video", Path(tmp) / "out" / "clip", {})
        job.paths = video_paths(job.stem, opts)
        start = time.perf_counter()
        written, problem = process_video(job, predictor, opts, every=1)
        e2e_fps = written / (time.perf_counter() - start)
    h, w = frames[0].shape[:2]
    print(f"video: {len(frames)} frames {w}x{h}, backend {predictor.backend_name} "
          f"({args.threads or 'default'} threads), "
          f"save {args.save} as {args.video_format}")
    print(f"model only: {model_fps:.2f} frames/s ({1000 / model_fps:.1f} ms/frame) with "
          f"{getattr(predictor.backend, 'concurrency', 1)} frame(s) in flight as predict runs it; "
          f"one frame at a time {latency_fps:.2f} frames/s")
    print("other stages, ms/frame run alone on one thread: " + ", ".join(
        f"{k} {1000 * v / len(frames):.1f}" for k, v in stages.items()))
    print(f"end to end: {e2e_fps:.2f} frames/s = {100 * e2e_fps / model_fps:.0f}% of model-only"
          + (f" ({problem})" if problem else ""))


if __name__ == "__main__":
    main()
