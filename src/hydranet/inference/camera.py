"""The camera: pinhole intrinsics, and the focal length assumed when none is given."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

# When a camera-aware model is given no camera, it assumes this horizontal field of view
# (a phone or a dash-cam behind a windscreen is 60-75 degrees; KITTI's is 81).
ASSUMED_HFOV_DEG = 60.0
# A 35 mm-equivalent focal length is defined on the diagonal of a 36 x 24 mm frame.
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
# EXIF 35 mm-equivalent focal lengths trusted as a camera: a 10 mm lens sees about 130 degrees
# across the diagonal, 800 mm under 4; values outside are unset fields or broken writers.
PLAUSIBLE_FOCAL_35MM = (10.0, 800.0)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera: focal lengths and principal point in pixels, for an image of ``size``."""

    fx: float
    fy: float
    cx: float
    cy: float
    size: tuple[int, int] | None = None  # (height, width) the values refer to, when known

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, size: tuple[int, int] | None = None) -> "Intrinsics":
        """From a 3x3 camera matrix ``K``."""
        k = np.asarray(matrix, np.float64)
        if k.shape != (3, 3) or not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise InputError(f"camera matrix must be 3x3 with positive focal lengths, got {k.tolist()}")
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), size)

    def scaled_to(self, height: int, width: int) -> "Intrinsics":
        """The same camera for an image resized to ``height`` x ``width``."""
        if self.size is None or self.size == (height, width):
            return self
        sy, sx = height / self.size[0], width / self.size[1]
        return Intrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5,
                          (self.cy + 0.5) * sy - 0.5, (height, width))

    def for_image(self, height: int, width: int, tolerance: float = 0.05) -> "Intrinsics":
        """Intrinsics for an image of this size.

        KITTI drives differ by a few pixels in rectified size (1242x375, 1226x370, ...), which
        are crops, not resizes: within ``tolerance`` the values are used unchanged; beyond it
        the image is taken to be a resized copy and the intrinsics are scaled.
        """
        if self.size is None:
            return self
        h0, w0 = self.size
        if abs(height / h0 - 1) <= tolerance and abs(width / w0 - 1) <= tolerance:
            return self
        return self.scaled_to(height, width)


def from_focal_35mm(focal_35mm: float, height: int, width: int) -> Intrinsics:
    """The camera of a ``height`` x ``width`` image from its 35 mm-equivalent focal length
    (EXIF ``FocalLengthIn35mmFilm``): square pixels, principal point at the centre."""
    f = focal_35mm * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM
    return Intrinsics(f, f, (width - 1) / 2, (height - 1) / 2, (height, width))


def check_hfov(hfov_deg: float, name: str = "horizontal field of view") -> float:
    """A horizontal field of view in degrees that a pinhole camera can have (1-170)."""
    value = float(hfov_deg)
    if not 1.0 <= value <= 170.0:
        raise InputError(f"{name} {value:g}: give 1 to 170 degrees (a phone is about 65-75, "
                         "a dash-cam 100-140)")
    return value


def from_hfov(hfov_deg: float, height: int, width: int) -> Intrinsics:
    """The camera of a ``height`` x ``width`` image with a horizontal field of view of
    ``hfov_deg`` degrees: square pixels, principal point at the centre, no distortion."""
    f = (width / 2) / math.tan(math.radians(check_hfov(hfov_deg)) / 2)
    return Intrinsics(f, f, (width - 1) / 2, (height - 1) / 2, (height, width))


CameraOption = Intrinsics | np.ndarray | Sequence[float] | None


def as_intrinsics(camera: CameraOption) -> Intrinsics | None:
    """``Intrinsics``, a 3x3 ``K`` or ``(fx, fy, cx, cy)`` -> ``Intrinsics`` (None stays None)."""
    if camera is None or isinstance(camera, Intrinsics):
        return camera
    values = np.asarray(camera, np.float64)
    if values.shape == (3, 3):
        return Intrinsics.from_matrix(values)
    if values.shape == (4,) and np.isfinite(values).all() and values[0] > 0 and values[1] > 0:
        return Intrinsics(*(float(v) for v in values))
    raise InputError(f"intrinsics must be a 3x3 matrix or fx,fy,cx,cy with positive focal lengths, "
                     f"got {values.tolist()}")


def camera_record(camera: Intrinsics | None, source: str, hfov_deg: float = ASSUMED_HFOV_DEG) -> dict[str, object]:
    """What a raw sidecar says of the camera depth was made metric for: its values and where
    they came from (``None``: a field of view, ``hfov_deg``, whose focal length follows each image's width)."""
    if camera is None:
        return {"source": source, "horizontal_fov_deg": hfov_deg}
    record: dict[str, object] = {"source": source, "fx": round(camera.fx, 4), "fy": round(camera.fy, 4),
                                 "cx": round(camera.cx, 4), "cy": round(camera.cy, 4)}
    if camera.size is not None:
        record["size"] = {"height": int(camera.size[0]), "width": int(camera.size[1])}
    return record


def focal_of(camera: Intrinsics | None, width: int, hfov_deg: float = ASSUMED_HFOV_DEG) -> tuple[float, bool]:
    """The horizontal focal length in pixels for an image ``width`` wide, and whether it came from
    the field of view ``hfov_deg`` (no camera given) rather than the camera."""
    if camera is None:
        return (width / 2) / math.tan(math.radians(hfov_deg) / 2), True
    if camera.size is not None and camera.size[1] != width:
        return camera.fx * width / camera.size[1], False
    return camera.fx, False
