"""What ``hydranet predict`` writes for an image or a video, and under which names.

For an input ``NAME`` and output stem ``OUT/NAME``:

- pictures: ``NAME_panel.jpg``, ``NAME_overlay.jpg``, ``NAME_segmentation.jpg``,
  ``NAME_depth.jpg`` (``.png`` with ``image_format="png"``; videos: ``NAME_panel.mp4`` /
  ``.gif`` ...);
- raw: ``NAME_raw_labels.png``, ``NAME_raw_depth.png`` (KITTI uint16), ``NAME_raw_depth.npy``
  and the sidecar ``NAME_raw.json`` (videos: one file per frame in ``NAME_raw/``);
- 3D: ``NAME.ply`` and ``NAME_bev.jpg`` (videos: ``NAME_pointcloud/FRAME.ply`` and
  ``NAME_bev.mp4``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import HydranetError
from ..fileio import atomic_path
from .media import MAX_PIXELS, VideoWriter
from .camera import from_hfov
from .pointcloud import Intrinsics, backproject, bev_image, point_colors, write_ply
from .predictor import Prediction
from .raw import save_depth_npy, save_depth_png, save_labels_png, sidecar, write_sidecar
from .render import colorize_depth

VISUALS: tuple[str, ...] = ("panel", "overlay", "segmentation", "depth")
SAVE_KINDS: tuple[str, ...] = VISUALS + ("raw",)
# Pictures are for looking at: JPEG (quality 95, full-resolution colour so that class borders
# stay sharp) writes a 1940x664 panel in ~5 ms where PNG takes 20-28 ms, more than the network.
# Raw outputs are always lossless.
PICTURE_FORMATS: tuple[str, ...] = ("jpg", "png")
_ENCODE_PARAMS: dict[str, list[int]] = {
    ".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444],
}


@dataclass
class OutputOptions:
    """Choices of what to write and how to draw it."""

    save: tuple[str, ...] = ("panel",)
    image_format: str = "jpg"
    video_formats: tuple[str, ...] = ("mp4",)
    depth_range: tuple[float, float] | None = None
    alpha: float = 0.5
    cmap: str = "plasma"
    depth_scale: str = "log"
    pointcloud: bool = False
    bev: bool = False
    intrinsics: Intrinsics | None = None
    hfov: float | None = None  # a stated horizontal field of view, for images without intrinsics
    point_colors: str = "class"
    panel_height: int | None = None
    model_name: str = ""
    label_set: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Reading images: larger ones are refused from their header, or read reduced to fit.
    max_pixels: int | None = MAX_PIXELS
    downscale_large: bool = False
    # With no camera stated, an image's depth uses the camera its EXIF focal length gives.
    exif_camera: bool = True

    @property
    def visuals(self) -> tuple[str, ...]:
        return tuple(k for k in VISUALS if k in self.save)

    def check(self, has_depth: bool) -> None:
        """Raise ``HydranetError`` for choices the model cannot serve."""
        if self.image_format not in PICTURE_FORMATS:
            raise HydranetError(f"--image-format {self.image_format!r}: choose {' or '.join(PICTURE_FORMATS)}")
        unknown = [k for k in self.save if k not in SAVE_KINDS]
        if unknown:
            raise HydranetError(f"--save: unknown output(s) {', '.join(unknown)}; "
                                f"choose from {','.join(SAVE_KINDS)}")
        if not has_depth and ("depth" in self.save or self.pointcloud or self.bev):
            raise HydranetError("these weights have no depth head; drop depth from --save and "
                                "--pointcloud/--bev")
        if (self.pointcloud or self.bev) and self.intrinsics is None and self.hfov is None \
                and not self.exif_camera:
            raise HydranetError("--pointcloud and --bev need the camera: pass --hfov DEG, --intrinsics "
                                "fx,fy,cx,cy or --calib calib_cam_to_cam.txt")


def render(kind: str, pred: Prediction, opts: OutputOptions) -> np.ndarray:
    """One of ``VISUALS`` as a uint8 RGB picture."""
    if kind == "panel":
        return pred.panel(depth_range=opts.depth_range, alpha=opts.alpha, cmap=opts.cmap,
                          tile_height=opts.panel_height, depth_scale=opts.depth_scale)
    if kind == "overlay":
        return pred.overlay(opts.alpha)
    if kind == "segmentation":
        return pred.colorize()
    if kind == "depth":
        return colorize_depth(pred.depth, opts.depth_range or pred.depth_range, opts.cmap, scale=opts.depth_scale)
    raise ValueError(f"unknown picture {kind!r}")


def image_paths(stem: Path, opts: OutputOptions, has_depth: bool = True) -> dict[str, Path]:
    """Every file written for an image with output stem ``stem`` (``OUT/NAME``)."""
    name = stem.name
    paths = {kind: stem.with_name(f"{name}_{kind}.{opts.image_format}") for kind in opts.visuals}
    if "raw" in opts.save:
        paths["raw_labels"] = stem.with_name(f"{name}_raw_labels.png")
        if has_depth:
            paths["raw_depth_png"] = stem.with_name(f"{name}_raw_depth.png")
            paths["raw_depth_npy"] = stem.with_name(f"{name}_raw_depth.npy")
        paths["raw_json"] = stem.with_name(f"{name}_raw.json")
    if opts.pointcloud:
        paths["pointcloud"] = stem.with_name(f"{name}.ply")
    if opts.bev:
        paths["bev"] = stem.with_name(f"{name}_bev.{opts.image_format}")
    return paths


def video_paths(stem: Path, opts: OutputOptions) -> dict[str, Path]:
    """Every file or folder written for a video with output stem ``stem``."""
    name = stem.name
    kinds = list(opts.visuals) + (["bev"] if opts.bev else [])
    paths = {f"{kind}.{fmt}": stem.with_name(f"{name}_{kind}.{fmt}")
             for kind in kinds for fmt in opts.video_formats}
    if "raw" in opts.save:
        paths["raw_dir"] = stem.with_name(f"{name}_raw")
        paths["raw_json"] = stem.with_name(f"{name}_raw.json")
    if opts.pointcloud:
        paths["pointcloud_dir"] = stem.with_name(f"{name}_pointcloud")
    return paths


def existing(paths: dict[str, Path]) -> list[Path]:
    """Those of ``paths`` that already exist (folders only when not empty)."""
    found = []
    for path in paths.values():
        if path.is_dir():
            if any(path.iterdir()):
                found.append(path)
        elif path.exists():
            found.append(path)
    return found


def _write_rgb(path: Path, image: np.ndarray) -> None:
    with atomic_path(path, suffix=path.suffix) as tmp:
        params = _ENCODE_PARAMS.get(path.suffix.lower(), [])
        # cvtColor, not image[:, :, ::-1]: copying through a reversed axis took 5 ms a panel.
        if not cv2.imwrite(str(tmp), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR), params):
            raise OSError(f"{path}: could not write image (disk full or folder not writable?)")


def _points(pred: Prediction, opts: OutputOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    depth = pred.depth
    if "sky" in pred.class_names:
        # The network's depth for sky is a number, not a distance: in a cloud it would hang as a
        # wall 20-40 m away. Sky pixels are left out of point clouds and top views.
        depth = np.where(pred.labels == pred.class_names.index("sky"), np.float32(0), depth)
    camera = opts.intrinsics if opts.intrinsics is not None else from_hfov(opts.hfov, *pred.size)
    points, pixels = backproject(depth, camera)
    colours = point_colors(pred.labels, pred.image, pred.palette, pixels, opts.point_colors)
    labels = pred.labels.reshape(-1)[pixels]
    return points, colours, labels


def _bev(pred: Prediction, points: np.ndarray, labels: np.ndarray, opts: OutputOptions) -> np.ndarray:
    """Bird's-eye view of the points in their class colours, out to the far end of the depth range."""
    lo, hi = opts.depth_range or pred.depth_range
    palette = np.concatenate([pred.palette, np.zeros((1, 3), np.uint8)])
    colours = palette[np.minimum(labels.astype(np.int64), len(palette) - 1)]
    return bev_image(points, colours, forward=(max(lo, 0.0), hi))


def write_image_outputs(pred: Prediction, paths: dict[str, Path], opts: OutputOptions,
                        source: str = "") -> None:
    """Write every output of one image prediction to ``paths`` (from ``image_paths``)."""
    if (opts.pointcloud or opts.bev) and opts.intrinsics is None and opts.hfov is None:  # before any file
        raise HydranetError("--pointcloud and --bev need the camera and this image's EXIF states no focal "
                            "length: pass --hfov DEG, --intrinsics fx,fy,cx,cy or --calib calib_cam_to_cam.txt")
    for kind in opts.visuals:
        _write_rgb(paths[kind], render(kind, pred, opts))
    if "raw" in opts.save:
        save_labels_png(paths["raw_labels"], pred.labels, len(pred.class_names))
        files = {"labels": paths["raw_labels"].name}
        if pred.depth is not None:
            save_depth_png(paths["raw_depth_png"], pred.depth)
            save_depth_npy(paths["raw_depth_npy"], pred.depth)
            files.update(depth_png=paths["raw_depth_png"].name, depth_npy=paths["raw_depth_npy"].name)
        write_sidecar(paths["raw_json"], sidecar(
            pred.class_names, pred.palette, model=opts.model_name, label_set=opts.label_set,
            source=source, image_size=pred.size, files=files, **opts.extra))
    if opts.pointcloud or opts.bev:
        points, colours, labels = _points(pred, opts)
        if opts.pointcloud:
            write_ply(paths["pointcloud"], points, colours, labels)
        if opts.bev:
            _write_rgb(paths["bev"], _bev(pred, points, labels, opts))


# The default panel video's four pictures side by side stay within this width, so that the
# video fits H.264 level 5.1 (4096 pixels wide), what most hardware decoders play: a 1080p
# video's panel (3840) is unchanged; a 4K one's was 7,700 pixels wide and an 8K one's 15,360.
MAX_PANEL_WIDTH = 4000


class VideoSink:
    """Writes the outputs of a video's predictions frame by frame; ``close()`` finishes them.

    Without ``opts.panel_height`` the panel's pictures are drawn at ``panel_scale`` of the
    frame height, so that a 2x2 panel of a wide video has about the video's own size:
    encoding a full-scale panel (4x the pixels) would cost more than the network on a CPU.
    Its four pictures side by side stay within ``MAX_PANEL_WIDTH`` (an 8K video's would not).
    """

    def __init__(self, paths: dict[str, Path], fps: Fraction, opts: OutputOptions, source: str = "",
                 every: int = 1, source_fps: Fraction | None = None, panel_scale: float = 0.5) -> None:
        self.paths, self.fps, self.opts, self.source, self.every = paths, fps, opts, source, every
        self.panel_scale = panel_scale
        self.source_fps = source_fps or fps
        self.writers: dict[str, VideoWriter] = {
            key: VideoWriter(path, fps) for key, path in paths.items()
            if "." in key and key.split(".")[1] in ("mp4", "gif")
        }
        self.frames: list[int] = []
        self.size: tuple[int, int] | None = None
        self._meta: tuple[list[str], np.ndarray] | None = None
        self._has_depth = False

    def prediction_size(self, shape: tuple[int, int]) -> tuple[int, int]:
        """The resolution predictions for frames of ``shape`` are needed at.

        A panel is all that is written by default, and its pictures are smaller than the
        frame: the prediction is made at that size (resizing and rendering a quarter of the
        pixels). Raw outputs, point clouds and the other pictures need the full frame.
        """
        h, w = int(shape[0]), int(shape[1])
        self._panel_height_for(h, w)
        full = set(self.opts.visuals) != {"panel"} or "raw" in self.opts.save or \
            self.opts.pointcloud or self.opts.bev
        tile_h = self.opts.panel_height
        if full or tile_h is None or tile_h >= h:
            return h, w
        return tile_h, max(1, int(round(w * tile_h / h)))

    def _panel_height_for(self, frame_height: int, frame_width: int) -> None:
        if self.opts.panel_height is None:
            height = min(frame_height * self.panel_scale, MAX_PANEL_WIDTH / 4 * frame_height / max(frame_width, 1))
            self.opts = replace(self.opts, panel_height=max(16, int(round(height))))

    def write(self, frame_index: int, pred: Prediction) -> None:
        self._panel_height_for(*pred.size)
        opts = self.opts
        pictures = {kind: render(kind, pred, opts) for kind in opts.visuals}
        if opts.pointcloud or opts.bev:
            points, colours, labels = _points(pred, opts)
            if opts.pointcloud:
                write_ply(self.paths["pointcloud_dir"] / f"{frame_index:06d}.ply", points, colours, labels)
            if opts.bev:
                pictures["bev"] = _bev(pred, points, labels, opts)
        for key, writer in self.writers.items():
            writer.write(pictures[key.split(".")[0]])
        if "raw" in opts.save:
            folder = self.paths["raw_dir"]
            save_labels_png(folder / f"{frame_index:06d}_labels.png", pred.labels, len(pred.class_names))
            if pred.depth is not None:
                save_depth_png(folder / f"{frame_index:06d}_depth.png", pred.depth)
                save_depth_npy(folder / f"{frame_index:06d}_depth.npy", pred.depth)
        self.frames.append(frame_index)
        self.size = pred.size
        self._meta = (pred.class_names, pred.palette)
        self._has_depth = pred.depth is not None

    def close(self) -> None:
        """Finish every video file and write the raw sidecar (also after a failure)."""
        errors = []
        for writer in self.writers.values():
            try:
                writer.close()
            except Exception as exc:  # finish the other files first
                errors.append(exc)
        if "raw" in self.opts.save and self._meta is not None:
            folder = self.paths["raw_dir"].name
            files = {"labels": f"{folder}/{{frame:06d}}_labels.png"}
            if self._has_depth:
                files.update(depth_png=f"{folder}/{{frame:06d}}_depth.png",
                             depth_npy=f"{folder}/{{frame:06d}}_depth.npy")
            write_sidecar(self.paths["raw_json"], sidecar(
                *self._meta, model=self.opts.model_name, label_set=self.opts.label_set,
                source=self.source, image_size=self.size, files=files,
                fps=float(self.source_fps), every=self.every, frames=self.frames, **self.opts.extra))
        if errors:
            raise errors[0]

    def written(self) -> list[Path]:
        """The video files that received frames."""
        return [w.path for w in self.writers.values() if w.frames_written]
