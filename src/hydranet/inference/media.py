"""Reading images and videos, writing videos (H.264 MP4 and GIF) through PyAV.

Images come back as uint8 RGB whatever they were stored as (greyscale, palette, RGBA,
16-bit, EXIF-rotated). Videos are decoded frame by frame; a damaged or truncated video
yields the frames decoded before the damage and records what went wrong in
``VideoReader.error`` instead of raising mid-stream, so callers can keep that work.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from .camera import PLAUSIBLE_FOCAL_35MM, Intrinsics, from_focal_35mm
from .quicktime import quicktime_focal_35mm

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts", ".gif"})
VIDEO_FORMATS: tuple[str, ...] = ("mp4", "gif")
DEFAULT_FPS = Fraction(25)

# The largest image decoded by default: 50 Mpx is ~150 MB as RGB and a few GB through
# post-processing at full resolution, safe on a machine of 8 GB or more. PIL's own bomb check
# stays behind it.
MAX_PIXELS = 50_000_000
# libx264 refuses frames wider or taller than this.
MAX_H264_SIDE = 16384
Image.MAX_IMAGE_PIXELS = 200_000_000
# Reading a large image reduced (``downscale``): libjpeg decodes a baseline JPEG at 1/2, 1/4 or
# 1/8 of its size straight from the file (Pillow's ``draft``), so memory stays bounded whatever
# the JPEG's size. Every other format (PNG, TIFF, WebP, ..., and progressive JPEG, whose
# coefficients libjpeg buffers whole) is decoded whole before it is reduced: only up to this many
# pixels, about 400 MB of decoded image; larger ones are refused even when downscaling.
FULL_DECODE_PIXELS = 100_000_000
_EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                   6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


class ImageTooLarge(InputError):
    """An image over the pixel limit (refused from its header, before anything is decoded)."""


@dataclass(frozen=True)
class DecodedImage:
    """An image as read by :func:`decode_image`: the pixels, the file's size when they were
    reduced, and the 35 mm-equivalent focal length its EXIF states (None: none or implausible)."""

    image: np.ndarray              # uint8 RGB (H, W, 3), upright
    original_size: tuple[int, int]  # (height, width) of the file's image, upright
    focal_35mm: float | None = None

    @property
    def reduced(self) -> bool:
        return self.image.shape[:2] != self.original_size

    @property
    def camera(self) -> Intrinsics | None:
        """The camera of the decoded pixels from the EXIF focal length, if the file states one."""
        if self.focal_35mm is None:
            return None
        return from_focal_35mm(self.focal_35mm, *self.image.shape[:2])


def is_image(path: str | Path) -> bool:
    """True when the suffix is a still-image format."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path: str | Path) -> bool:
    """True when the suffix is a video format (animated GIF counts as video)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def to_rgb8(array: np.ndarray) -> np.ndarray:
    """Any greyscale / RGB / RGBA array of uint8, uint16 or float to uint8 RGB ``(H, W, 3)``.

    16-bit values are scaled by 1/256 (0-65535 -> 0-255, what PIL does for 16-bit RGB);
    floats are taken as 0-1 when their maximum is at most 1, else as 0-255. Alpha is dropped.
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] in (2, 4):  # grey + alpha, RGBA
        a = a[:, :, :-1]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise InputError(f"cannot use an image array of shape {a.shape}")
    if a.dtype == np.uint8:
        pass
    elif a.dtype.kind in "ui":
        a = (np.clip(a, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
    elif a.dtype.kind == "f":
        finite = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(finite.max()) if finite.size else 0.0
        scale = 255.0 if peak <= 1.0 else 1.0
        a = np.clip(finite * scale + 0.5, 0, 255).astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    else:
        raise InputError(f"cannot use an image array of dtype {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a)


def _pil_to_rgb8(im: Image.Image) -> np.ndarray:
    if im.mode in ("RGB", "L"):
        return to_rgb8(np.asarray(im))
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        return to_rgb8(np.asarray(im))
    # Palette, RGBA, LA, CMYK, YCbCr, 1-bit: PIL's conversion (alpha is dropped).
    return to_rgb8(np.asarray(im.convert("RGB")))


def read_image(path: str | Path, max_pixels: int | None = MAX_PIXELS, downscale: bool = False) -> np.ndarray:
    """An image file as uint8 RGB ``(H, W, 3)``, upright according to its EXIF orientation.

    Raises ``InputError`` naming the file when it is missing, not a readable image, or larger
    than ``max_pixels`` (checked from the header, before anything is decoded) unless
    ``downscale`` reads it reduced to fit (see :func:`decode_image`).
    """
    return decode_image(path, max_pixels, downscale).image


def decode_image(path: str | Path, max_pixels: int | None = MAX_PIXELS, downscale: bool = False) -> DecodedImage:
    """Like :func:`read_image`, and says whether (and from which size) the image was reduced.

    With ``downscale``, an image over ``max_pixels`` is read at the largest size under the
    limit an integer reduction gives: a baseline JPEG is decoded at 1/2, 1/4 or 1/8 straight
    from the file (bounded memory at any size), other formats are decoded whole first and are
    refused above ``FULL_DECODE_PIXELS`` (Pillow has no reduced decoding for them).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            # Our own limit decides; Pillow's bomb warning (200-400 Mpx) would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if max_pixels is not None and w * h > max_pixels:
                    if not downscale:
                        raise ImageTooLarge(f"{path}: {w}x{h} is {w * h / 1e6:.0f} Mpx, more than the "
                                            f"{max_pixels / 1e6:.0f} Mpx limit; downscale the image first")
                    image, upright = _reduced(im, path, max_pixels)
                else:
                    im.load()
                    image = _pil_to_rgb8(ImageOps.exif_transpose(im))
                    upright = image.shape[:2]
                focal = exif_focal_35mm(im)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image (unrecognised or corrupt file)") from None
    except Image.DecompressionBombError:
        raise InputError(f"{path}: more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} Mpx, larger than any "
                         "image hydranet decodes; downscale the file first") from None
    except MemoryError:
        raise InputError(f"{path}: cannot read image (out of memory while decoding it); pass a smaller "
                         "--max-pixels with --downscale-large, or downscale the file") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot read image ({_one_line(exc)})") from None
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"{path}: image is empty ({image.shape[1]}x{image.shape[0]})")
    return DecodedImage(image, upright, focal)


def exif_focal_35mm(im: Image.Image) -> float | None:
    """The open image's EXIF 35 mm-equivalent focal length in mm, None when absent or implausible.

    Only this tag is used: ``FocalLength`` needs the sensor's size, which the EXIF focal-plane
    resolution tags state for the sensor's full resolution, not for the stored image, and
    which phones often write wrong. A damaged EXIF block counts as absent.
    """
    try:
        value = im.getexif().get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.FocalLengthIn35mmFilm)
        focal = float(value) if value is not None else None
    except Exception:  # Pillow raises many kinds on a damaged EXIF block; the pixels are still fine
        return None
    lo, hi = PLAUSIBLE_FOCAL_35MM
    return focal if focal is not None and lo <= focal <= hi else None


def exif_camera(path: str | Path) -> Intrinsics | None:
    """The camera of an image file, upright, from its EXIF 35 mm-equivalent focal length.

    None when the file states none: a camera-aware model then assumes a field of view. A JPEG's
    header is all that is read (a PNG whose EXIF follows its pixels is decoded).
    ``predictor.predict(read_image(path), intrinsics=exif_camera(path))`` is what ``hydranet
    predict`` does for an image given no ``--intrinsics``.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            focal = exif_focal_35mm(im)
            if focal is None:
                return None
            w, h = im.size
            if _orientation(im) in (5, 6, 7, 8):
                w, h = h, w
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot read image ({_one_line(exc)})") from None
    return from_focal_35mm(focal, h, w)


def _reduced(im: Image.Image, path: Path, max_pixels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The open image ``im`` decoded at the largest integer reduction of at most ``max_pixels``,
    and its full size ``(H, W)``, both upright."""
    w, h = im.size
    progressive = bool(im.info.get("progressive") or im.info.get("progression"))
    if im.format in ("JPEG", "MPO") and not progressive:
        # libjpeg's DCT scaling: the largest of 1/1 .. 1/8 under the limit, else 1/8 and reduce() below.
        d = next((d for d in (1, 2, 4, 8) if -(-w // d) * -(-h // d) <= max_pixels), 8)
        im.draft(None, (w // d, h // d))
    elif w * h > FULL_DECODE_PIXELS:
        kind = f"progressive {im.format}" if progressive else (im.format or "image")
        raise ImageTooLarge(f"{path}: {w}x{h} {kind} is {w * h / 1e6:.0f} Mpx; only a baseline JPEG is read "
                            f"reduced straight from the file, a {kind} over {FULL_DECODE_PIXELS / 1e6:.0f} Mpx "
                            "would be decoded whole first: downscale the file first")
    im.load()
    # After load(): a PNG's EXIF may follow its pixels, and reading it would decode them.
    orientation = _orientation(im)
    upright = (w, h) if orientation in (5, 6, 7, 8) else (h, w)
    if im.mode.startswith("I;16"):
        im = im.convert("I")  # reduce() averages 32-bit integers, not 16-bit ones
    elif im.mode in ("1", "P", "PA"):
        im = im.convert("RGB")  # a palette cannot be averaged
    dw, dh = im.size
    f = max(1, math.ceil(math.sqrt(dw * dh / max_pixels)))
    while -(-dw // f) * -(-dh // f) > max_pixels:
        f += 1
    if f > 1:
        im = im.reduce(f)  # box average of f x f pixels
    if orientation in _EXIF_TRANSPOSE:
        im = im.transpose(_EXIF_TRANSPOSE[orientation])
    return _pil_to_rgb8(im), upright


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8, 1 = upright as stored)."""
    return int(im.getexif().get(ExifTags.Base.Orientation, 1) or 1)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class VideoReader:
    """Decodes a video file into uint8 RGB frames.

    ``fps`` is the stream's average frame rate, ``frame_count`` the number of frames the
    container announces (0 when unknown). Iterating yields frames; ``frames(every)`` yields
    ``(index, frame)`` for every ``every``-th frame. When the file is damaged or ends early,
    iteration stops after the last good frame and ``error`` says what happened.
    ``focal_35mm`` is the 35 mm-equivalent focal length a phone video's QuickTime metadata
    states (None: none or implausible); ``camera_for`` turns it into the camera of a frame.
    """

    def __init__(self, path: str | Path, max_pixels: int | None = MAX_PIXELS) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a folder, not a video")
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        try:
            self._container = av.open(str(self.path), "r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"{self.path}: not a readable video ({_ffmpeg_message(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path}: contains no video stream")
        self._stream = self._container.streams.video[0]
        if self._stream.codec_context is None:  # a codec FFmpeg does not know, or a damaged header
            self._container.close()
            raise InputError(f"{self.path}: not a readable video (its video stream has no decoder: "
                             "unknown codec or damaged header)")
        # FFmpeg's default slice threading: frame threading would add latency and, on a cut
        # file, swallow the frames still inside the decoder. Decoding runs beside the network
        # in a background thread anyway (see ``threads.Prefetch``).
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps: Fraction = Fraction(rate) if rate and 0 < rate <= 1000 else DEFAULT_FPS
        self.width: int = int(self._stream.codec_context.width)
        self.height: int = int(self._stream.codec_context.height)
        if max_pixels and self.width * self.height > max_pixels:
            # Refused from the header, as a large image is: every decoded frame would take
            # width x height x 3 bytes, several frames at a time.
            self._container.close()
            raise InputError(f"{self.path}: {self.width}x{self.height} video frames are "
                             f"{self.width * self.height / 1e6:.0f} Mpx, more than the {max_pixels / 1e6:.3g} Mpx "
                             "limit; downscale the video first")
        self.frame_count: int = int(self._stream.frames or 0)
        self.expected_frames: int = self.frame_count or self._frames_from_duration()
        self.frames_decoded = 0
        self.error: str | None = None

    @cached_property
    def focal_35mm(self) -> float | None:
        """Read from the file's atoms when first asked: opening a video to check it costs nothing."""
        return quicktime_focal_35mm(self.path)

    def camera_for(self, height: int, width: int) -> Intrinsics | None:
        """The camera of a decoded (upright) ``height`` x ``width`` frame from the focal length
        the file states, None when it states none."""
        return None if self.focal_35mm is None else from_focal_35mm(self.focal_35mm, height, width)

    def _frames_from_duration(self) -> int:
        duration = None
        if self._stream.duration and self._stream.time_base:
            duration = float(self._stream.duration * self._stream.time_base)
        elif self._container.duration:
            duration = self._container.duration / av.time_base
        return int(round(duration * float(self.fps))) if duration else 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, frame in self.frames():
            yield frame

    def frames(self, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """``(source frame index, RGB frame)`` for frames ``0, every, 2*every, ...``.

        A packet that does not decode is skipped (as ffmpeg does); a file that cannot be
        read further ends the iteration. Either way ``error`` describes the damage.
        """
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        index = bad_packets = 0
        first_problem = ""
        try:
            for packet in self._container.demux(self._stream):
                try:
                    decoded = packet.decode()
                except (av.FFmpegError, ValueError) as exc:
                    bad_packets += 1
                    first_problem = first_problem or f"after frame {index}: {_ffmpeg_message(exc)}"
                    continue
                for frame in decoded:
                    if index % every == 0:
                        yield index, _frame_to_rgb(frame)
                    index += 1
                    self.frames_decoded = index
        except (av.FFmpegError, OSError, ValueError) as exc:
            first_problem = first_problem or f"after frame {index}: {_ffmpeg_message(exc)}"
            bad_packets += 1
        # A cut file often ends without any decoding error; the container's count tells.
        expected = self.expected_frames
        slack = 0 if self.frame_count else max(1, int(0.1 * expected))
        detail = f"; first error {first_problem}" if first_problem else ""
        if expected and index < expected - slack:
            self.error = (f"video ends early: decoded {index} of {expected} frames (truncated or "
                          f"damaged file{detail}); kept the {index} frames decoded")
        elif bad_packets:
            self.error = (f"video is damaged: {bad_packets} packet(s) did not decode "
                          f"({first_problem}); kept the {index} frames that did")
        elif index == 0:
            self.error = "video has no decodable frames"

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ffmpeg_message(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or _one_line(exc)
    return str(text)


# AVColorSpace values whose YUV -> RGB matrix is BT.601 (unspecified: what swscale assumes),
# and AVColorRange values of limited ("TV", 16-235) range.
_BT601_SPACES = frozenset({2, 5, 6})
_LIMITED_RANGES = frozenset({0, 1})


def _frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    if frame.format.name == "yuv420p" and frame.colorspace in _BT601_SPACES \
            and frame.color_range in _LIMITED_RANGES and frame.width % 2 == 0 and frame.height % 2 == 0:
        # OpenCV's I420 -> RGB is the BT.601 limited-range formula to the rounding, at a fraction
        # of the cost of swscale's fast path (which is about a level darker). Other colour
        # spaces and full-range video keep swscale, which honours the frame's tags.
        rgb = cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420)
    else:
        rgb = frame.to_ndarray(format="rgb24")
    # Phone videos store portrait footage sideways plus a display-matrix rotation
    # (counter-clockwise degrees); apply it like ffmpeg's autorotate does.
    k = int(round((frame.rotation or 0) / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def iter_video(path: str | Path, every: int = 1) -> tuple[Fraction, Iterator[np.ndarray]]:
    """``(fps, frames)`` of a video; a shortcut over ``VideoReader`` for simple loops."""
    reader = VideoReader(path)

    def frames() -> Iterator[np.ndarray]:
        with reader:
            for _, frame in reader.frames(every):
                yield frame

    return reader.fps, frames()


def read_video(path: str | Path) -> tuple[Fraction, list[np.ndarray]]:
    """All frames of a (small) video in memory; raises ``InputError`` if it is damaged."""
    with VideoReader(path) as reader:
        frames = list(reader)
    if reader.error:
        raise InputError(f"{path}: {reader.error}")
    return reader.fps, frames


class VideoWriter:
    """Writes RGB frames to an H.264 MP4 or a GIF, chosen by the file suffix (or ``format``).

    Use as a context manager; frames may be written as soon as they exist and the frame
    size is taken from the first one. MP4 uses libx264 (``crf``, ``preset``) in yuv420p,
    which needs even sizes: odd frames are padded by repeating their last row/column.
    GIF gets its own 256-colour palette per frame; its frame delays are
    whole centiseconds, so 30 fps plays at 100/3 fps. Frames go to a hidden temporary file
    beside ``path`` that is finished and renamed into place on close, also when the ``with``
    block fails (or the program is interrupted), so frames written so far stay readable and
    ``path`` is never a half-written, unplayable file.
    """

    def __init__(self, path: str | Path, fps: float | Fraction, format: str | None = None,
                 crf: int = 20, preset: str = "ultrafast") -> None:
        self.path = Path(path)
        self.format = (format or self.path.suffix.lstrip(".")).lower()
        if self.format not in VIDEO_FORMATS:
            raise InputError(f"{self.path}: cannot write video format {self.format!r}; "
                             f"use one of {', '.join(VIDEO_FORMATS)}")
        self.fps = _as_fraction(fps)
        self.crf, self.preset = crf, preset
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (height, width) of the frames given
        self._container: av.container.OutputContainer | None = None
        self._stream = None
        self._closed = False
        self._tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")

    def _open(self, height: int, width: int) -> None:
        if self.format == "mp4" and max(height, width) > MAX_H264_SIDE:
            raise InputError(f"{self.path}: {width}x{height} frames are larger than H.264 allows "
                             f"({MAX_H264_SIDE} pixels a side); write smaller pictures (e.g. a lower "
                             "--panel-height)")
        self.size = (height, width)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "mp4":
            self._container = av.open(str(self._tmp), "w", format="mp4", options={"movflags": "+faststart"})
            codec = "libx264" if "libx264" in av.codecs_available else "h264"
            stream = self._container.add_stream(
                codec, rate=self.fps, options={"crf": str(self.crf), "preset": self.preset, "threads": "1"})
            stream.pix_fmt = "yuv420p"
            stream.width, stream.height = width + width % 2, height + height % 2
        else:
            self._container = av.open(str(self._tmp), "w", format="gif")
            stream = self._container.add_stream("gif", rate=self.fps)
            stream.pix_fmt = "pal8"
            stream.width, stream.height = width, height
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 RGB ``(H, W, 3)`` frame; every frame must have the first one's size."""
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        frame = to_rgb8(frame) if frame.dtype != np.uint8 or frame.ndim != 3 else frame
        h, w = frame.shape[:2]
        if self._container is None:
            self._open(h, w)
        elif (h, w) != self.size:
            raise ValueError(f"{self.path}: frame size {w}x{h} differs from the first frame's "
                             f"{self.size[1]}x{self.size[0]}")
        if self.format == "mp4" and (h % 2 or w % 2):
            # OpenCV's replicated border: numpy's edge pad costs more than the colour conversion.
            frame = cv2.copyMakeBorder(np.ascontiguousarray(frame), 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
        frame = np.ascontiguousarray(frame)
        if self.format == "gif":
            vf = _gif_frame(frame)
        else:
            # OpenCV's RGB -> I420 is BT.601 limited range, as libswscale's, at a fraction of its cost
            vf = av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        vf.pts = self.frames_written
        vf.time_base = 1 / self.fps
        self.frames_written += 1
        self._mux(self._stream.encode(vf))

    def _mux(self, packets: list) -> None:
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            return
        try:
            self._mux(self._stream.encode(None))
        finally:
            self._container.close()
        os.replace(self._tmp, self.path)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _as_fraction(fps: float | Fraction) -> Fraction:
    if isinstance(fps, Fraction):
        value = fps
    else:
        value = Fraction(fps).limit_denominator(1001)
    if not (value > 0 and math.isfinite(float(value))):
        raise ValueError(f"fps must be positive, got {fps}")
    return value


def _gif_frame(frame: np.ndarray) -> av.VideoFrame:
    """An RGB frame as a pal8 frame with its own 256-colour palette.

    PIL's fast octree quantizer takes ~40 ms for a 2464x1050 panel where FFmpeg's
    palettegen/paletteuse pair takes ~1 s; no dithering, so still areas do not flicker.
    """
    quantized = Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE,
                                                dither=Image.Dither.NONE)
    colours = np.asarray(quantized.getpalette() or [], np.uint8).reshape(-1, 3)[:256]
    palette = np.zeros((256, 4), np.uint8)  # ARGB, as PyAV expects for pal8
    palette[:, 0] = 255
    palette[: len(colours), 1:] = colours
    return av.VideoFrame.from_ndarray((np.asarray(quantized), palette), format="pal8")
