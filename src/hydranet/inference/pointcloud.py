"""3D from depth: camera intrinsics, back-projection to a coloured PLY, bird's-eye-view images.

Camera coordinates follow OpenCV/KITTI: x right, y down, z forward (the predicted depth is
z, the distance along the optical axis), pixel centres at integer coordinates.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..fileio import atomic_path
from .camera import Intrinsics
from .render import BACKGROUND, TEXT_COLOR, filled, put_text


def parse_intrinsics(text: str) -> Intrinsics:
    """``"fx,fy,cx,cy"`` (pixels) -> ``Intrinsics``."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[0] <= 0 or values[1] <= 0:
        raise InputError(f"intrinsics {text!r}: expected four numbers fx,fy,cx,cy in pixels "
                         "with positive focal lengths, e.g. 721.5,721.5,609.6,172.9")
    return Intrinsics(*values)


def read_kitti_calib(path: str | Path, camera: str = "02") -> Intrinsics:
    """Intrinsics of one camera from a KITTI calibration file.

    Reads ``P_rect_XX`` (and the image size ``S_rect_XX``) from ``calib_cam_to_cam.txt`` of the
    raw data, or ``PX`` from the odometry / object benchmarks' ``calib.txt``; ``camera``
    ``"02"`` is the left colour camera.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read calibration file ({exc.strerror or exc})") from None
    entries: dict[str, list[float]] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            entries[key.strip()] = [float(v) for v in rest.split()]
        except ValueError:
            continue  # calib_time and other text fields
    cam = camera.lstrip("0") or "0"
    size = None
    for key in (f"P_rect_{camera}", f"P{cam}", f"K_{camera}"):
        values = entries.get(key)
        if values and len(values) in (9, 12):
            m = np.asarray(values).reshape(3, -1)
            s = entries.get(f"S_rect_{camera}") if key.startswith("P_rect") else entries.get(f"S_{camera}")
            if s and len(s) == 2:
                size = (int(round(s[1])), int(round(s[0])))
            if m[0, 0] <= 0 or m[1, 1] <= 0:
                break
            return Intrinsics(float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2]), size)
    raise InputError(f"{path}: no usable P_rect_{camera}, P{cam} or K_{camera} entry; pass a KITTI "
                     "calib_cam_to_cam.txt / calib.txt or use --intrinsics fx,fy,cx,cy")


def backproject(depth: np.ndarray, intrinsics: Intrinsics, stride: int = 1,
                max_depth: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Depth ``(H, W)`` -> ``(points (N, 3) float32, pixel indices (N,) into the flat image)``.

    Pixels with non-finite or non-positive depth (or beyond ``max_depth``) are skipped;
    ``stride`` keeps every stride-th row and column.
    """
    depth = np.asarray(depth, np.float32)
    h, w = depth.shape
    k = intrinsics.for_image(h, w)
    rows = np.arange(0, h, stride)
    cols = np.arange(0, w, stride)
    z = depth[np.ix_(rows, cols)]
    valid = np.isfinite(z) & (z > 0)
    if max_depth is not None:
        valid &= z <= max_depth
    r, c = np.nonzero(valid)
    v, u = rows[r], cols[c]
    zz = z[r, c]
    x = (u.astype(np.float32) - np.float32(k.cx)) * zz / np.float32(k.fx)
    y = (v.astype(np.float32) - np.float32(k.cy)) * zz / np.float32(k.fy)
    points = np.stack([x, y, zz], axis=1).astype(np.float32)
    return points, (v * w + u).astype(np.int64)


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray,
              labels: np.ndarray | None = None) -> Path:
    """Binary little-endian PLY: float x, y, z, uchar red, green, blue (+ ushort label)."""
    points = np.asarray(points, np.float32).reshape(-1, 3)
    colors = np.asarray(colors, np.uint8).reshape(-1, 3)
    if len(colors) != len(points) or (labels is not None and len(labels) != len(points)):
        raise ValueError("points, colours and labels must have the same length")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if labels is not None:
        fields.append(("label", "<u2"))
    vertices = np.empty(len(points), dtype=fields)
    vertices["x"], vertices["y"], vertices["z"] = points[:, 0], points[:, 1], points[:, 2]
    vertices["red"], vertices["green"], vertices["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    if labels is not None:
        vertices["label"] = np.asarray(labels).astype(np.uint16)
    ply_types = {"<f4": "float", "u1": "uchar", "<u2": "ushort"}
    header = ["ply", "format binary_little_endian 1.0", "comment written by hydranet",
              f"element vertex {len(points)}"]
    header += [f"property {ply_types[t]} {name}" for name, t in fields]
    header.append("end_header")
    path = Path(path)
    with atomic_path(path, suffix=".ply") as tmp, tmp.open("wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(vertices.tobytes())
    return path


def read_ply(path: str | Path) -> np.ndarray:
    """A binary little-endian or ASCII PLY vertex table as a numpy structured array."""
    types = {"float": "<f4", "float32": "<f4", "double": "<f8", "uchar": "u1", "uint8": "u1",
             "char": "i1", "ushort": "<u2", "uint16": "<u2", "short": "<i2", "int": "<i4",
             "uint": "<u4", "int32": "<i4", "uint32": "<u4"}
    with Path(path).open("rb") as f:
        if f.readline().strip() != b"ply":
            raise InputError(f"{path}: not a PLY file")
        fmt, count, fields = "", 0, []
        in_vertex = False
        while True:
            line = f.readline()
            if not line:
                raise InputError(f"{path}: PLY header has no end_header")
            words = line.decode("ascii", "replace").split()
            if not words:
                continue
            if words[0] == "format":
                fmt = words[1]
            elif words[0] == "element":
                in_vertex = words[1] == "vertex"
                if in_vertex:
                    count = int(words[2])
            elif words[0] == "property" and in_vertex:
                fields.append((words[-1], types[words[1]]))
            elif words[0] == "end_header":
                break
        dtype = np.dtype(fields)
        if fmt == "binary_little_endian":
            data = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype, count=count)
        elif fmt == "ascii":
            rows = [tuple(line.split()) for _, line in zip(range(count), f)]
            data = np.array([tuple(np.array(v, dtype=t[1]) for v, t in zip(r, fields)) for r in rows],
                            dtype=dtype)
        else:
            raise InputError(f"{path}: unsupported PLY format {fmt!r}")
    return data


def point_colors(labels: np.ndarray, image: np.ndarray, palette: np.ndarray, pixels: np.ndarray,
                 mode: str = "class") -> np.ndarray:
    """Colours of back-projected points: their class colour or the image's pixel colour."""
    if mode == "class":
        pal = np.concatenate([np.asarray(palette, np.uint8), np.zeros((1, 3), np.uint8)])
        lab = labels.reshape(-1)[pixels].astype(np.int64)
        return pal[np.minimum(lab, len(pal) - 1)]
    if mode == "image":
        return image.reshape(-1, 3)[pixels]
    raise ValueError(f"unknown point colour mode {mode!r}; use 'class' or 'image'")


def bev_image(points: np.ndarray, colors: np.ndarray, forward: tuple[float, float] = (0.0, 80.0),
              lateral: tuple[float, float] | None = None, size: int = 600,
              grid: float | None = None) -> np.ndarray:
    """Bird's-eye view: points seen from above (x right, z up the image), camera at bottom centre.

    Each cell shows the highest point falling into it. Grid lines every ``grid`` metres
    (default: a round step giving about 8 lines) are labelled with their distance.
    """
    f0, f1 = float(forward[0]), float(forward[1])
    if not f1 > f0:
        raise ValueError(f"forward range must increase, got {forward}")
    if lateral is None:
        half = (f1 - f0) / 2
        lateral = (-half, half)
    l0, l1 = float(lateral[0]), float(lateral[1])
    metres_per_px = (f1 - f0) / size
    height = size
    width = max(1, int(round((l1 - l0) / metres_per_px)))
    canvas = filled((height, width), BACKGROUND)
    step = grid or _round_step((f1 - f0) / 8)
    th = max(12, size // 40)
    z = f0 + step
    while z < f1:
        row = int(round((f1 - z) / metres_per_px))
        cv2.line(canvas, (0, row), (width - 1, row), (60, 60, 60), 1)
        put_text(canvas, f"{z:g} m", (3, max(0, row - th - 1)), th, (150, 150, 150))
        z += step
    x = math.ceil(l0 / step) * step
    while x <= l1:
        col = int(round((x - l0) / metres_per_px))
        cv2.line(canvas, (col, 0), (col, height - 1), (60, 60, 60), 1)
        x += step
    # The camera, drawn under the points.
    ego = int(round((0.0 - l0) / metres_per_px))
    tri = np.array([[ego, height - 1], [ego - th // 2, height - 1 - th], [ego + th // 2, height - 1 - th]])
    cv2.fillPoly(canvas, [tri.astype(np.int32)], TEXT_COLOR)
    pts = np.asarray(points, np.float32).reshape(-1, 3)
    cols = np.asarray(colors, np.uint8).reshape(-1, 3)
    r = np.floor((f1 - pts[:, 2]) / metres_per_px).astype(np.int64)
    c = np.floor((pts[:, 0] - l0) / metres_per_px).astype(np.int64)
    keep = (r >= 0) & (r < height) & (c >= 0) & (c < width)
    r, c, y, cols = r[keep], c[keep], pts[keep, 1], cols[keep]
    # Each cell shows its highest point (smallest y, since y points down).
    order = np.argsort(y, kind="stable")
    cells, first = np.unique((r * width + c)[order], return_index=True)
    canvas.reshape(-1, 3)[cells] = cols[order][first]
    return canvas


def _round_step(raw: float) -> float:
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude
