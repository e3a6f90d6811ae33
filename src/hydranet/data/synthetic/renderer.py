"""Rendering a layout with pybullet's TinyRenderer (software, headless, CPU-only).

TinyRenderer gives a lit RGB image with shadows, a z-buffer (turned into exact
metric depth along the optical axis) and a per-pixel object id (turned into
CamVid labels). It does not clip triangles at the near plane, so geometry
behind the camera is trimmed or dropped before each frame is built.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .layout import SKY, Layout, Part

NEAR = 0.3
FAR = 250.0
CLIP_AHEAD = 0.8  # metres ahead of the camera where geometry is trimmed


@dataclass(frozen=True)
class Camera:
    """A pinhole camera with square pixels: pose in the world frame, intrinsics from ``hfov_deg``."""

    position: tuple[float, float, float]
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    width: int = 480
    height: int = 360
    hfov_deg: float = 60.0

    @property
    def focal(self) -> float:
        """Focal length in pixels (fx = fy)."""
        return (self.width / 2) / math.tan(math.radians(self.hfov_deg) / 2)

    @property
    def vfov_deg(self) -> float:
        return math.degrees(2 * math.atan((self.height / 2) / self.focal))

    def intrinsics(self) -> np.ndarray:
        """3x3 K matrix in pixel-index coordinates (pixel (col, row) is the point (col, row)).

        TinyRenderer samples each pixel at integer coordinates of a bottom-up frame
        buffer, so the principal point is (W/2, H/2 - 1), not the image centre
        (measured: road depth then matches flat-ground geometry to 1e-6).
        """
        f = self.focal
        cx, cy = self.principal_point
        return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], dtype=np.float64)

    @property
    def principal_point(self) -> tuple[float, float]:
        return self.width / 2, self.height / 2 - 1

    def pose(self) -> np.ndarray:
        """4x4 camera-to-world transform in OpenCV camera axes (x right, y down, z forward)."""
        forward, left, up = self.basis()
        out = np.eye(4)
        out[:3, :3] = np.stack([-left, -up, forward], axis=1)
        out[:3, 3] = self.position
        return out

    def motion_to(self, other: "Camera") -> np.ndarray:
        """``T_{self->other}``: maps a point in this camera's coordinates to ``other``'s."""
        return np.linalg.inv(other.pose()) @ self.pose()

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit forward, left and up vectors of the camera in the world frame."""
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        forward = np.array([cp * cy, cp * sy, sp])
        left0 = np.array([-sy, cy, 0.0])
        up0 = np.cross(forward, left0)
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        left = cr * left0 + sr * up0
        up = np.cross(forward, left)
        return forward, left, up


@dataclass
class Render:
    """What the renderer saw: ``rgb`` uint8, ``part`` index per pixel (-1 = sky), ``labels``
    uint8 CamVid ids (sky for background), ``depth`` float32 z-depth in metres (inf = sky),
    ``points`` float32 world coordinates (H, W, 3)."""

    rgb: np.ndarray
    part: np.ndarray
    labels: np.ndarray
    depth: np.ndarray
    points: np.ndarray
    camera: Camera
    parts: list[Part]


@dataclass(frozen=True)
class Lighting:
    """TinyRenderer's single directional light (direction points towards the light)."""

    direction: tuple[float, float, float] = (0.5, 0.8, 1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.55
    diffuse: float = 0.55
    specular: float = 0.05
    shadow: bool = True


def _trim(part: Part, axis: int, bound: float, side: float = 1.0) -> Part | None:
    """The part restricted to ``side * coordinate >= side * bound`` along world ``axis``, or None
    when it must be dropped (a rotated part that crosses the bound)."""
    lo, hi = part.extent(axis)
    if side < 0:
        lo, hi, bound = -hi, -lo, -bound
    if hi <= bound:
        return None
    if lo >= bound:
        return part
    if part.shape == "box" and part.euler == (0.0, 0.0, 0.0):
        half = (hi - bound) / 2
        centre = side * (bound + half)
        size = tuple(half if i == axis else v for i, v in enumerate(part.size))
        position = tuple(centre if i == axis else v for i, v in enumerate(part.position))
        return Part(part.shape, size, position, part.color, part.label, part.material, part.euler, part.seed)
    return None


def _clip_plane(camera: Camera) -> tuple[int, float, float]:
    """Where geometry is cut just in front of the camera: ``(axis, bound, side)`` for :func:`_trim`.

    The tiny renderer draws triangles behind the eye wrongly, so everything on the far side of
    an axis-aligned plane ahead of the camera is removed. A camera looking along the street is cut
    in x; one looking to the side (its whole field of view on one side of the street's axis) in y.
    """
    half_fov = camera.hfov_deg / 2
    yaw = math.degrees(camera.yaw)
    if abs(yaw) + half_fov <= 85.0:
        return 0, camera.position[0] + CLIP_AHEAD, 1.0
    if abs(yaw) - half_fov >= 5.0 and abs(yaw) + half_fov <= 175.0:
        side = 1.0 if yaw > 0 else -1.0
        return 1, camera.position[1] + side * CLIP_AHEAD, side
    raise ValueError(f"camera yaw {yaw:.0f} deg with a {camera.hfov_deg:.0f} deg field of view "
                     "cannot be rendered: it must look along the street (|yaw| + hfov/2 <= 85) "
                     "or to one side of it (5 <= |yaw| - hfov/2, |yaw| + hfov/2 <= 175)")


class SceneRenderer:
    """Owns one pybullet DIRECT connection (one per process; reconnects after a fork)."""

    def __init__(self) -> None:
        self._client: int | None = None
        self._pid: int | None = None

    def _connect(self):
        import pybullet as p

        if self._client is None or self._pid != os.getpid():
            self._client = p.connect(p.DIRECT)
            self._pid = os.getpid()
        return p, self._client

    def close(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            import pybullet as p

            try:
                p.disconnect(self._client)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._client = None

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def _build(self, parts: list[Part]) -> list[Part]:
        p, client = self._connect()
        p.resetSimulation(physicsClientId=client)
        built: list[Part] = []
        for part in parts:
            rgba = list(part.color) + [1.0]
            if part.shape == "box":
                shape = p.createVisualShape(p.GEOM_BOX, halfExtents=list(part.size), rgbaColor=rgba,
                                            physicsClientId=client)
            elif part.shape == "cylinder":
                shape = p.createVisualShape(p.GEOM_CYLINDER, radius=part.size[0], length=part.size[1],
                                            rgbaColor=rgba, physicsClientId=client)
            else:
                shape = p.createVisualShape(p.GEOM_SPHERE, radius=part.size[0], rgbaColor=rgba,
                                            physicsClientId=client)
            body = p.createMultiBody(0, -1, shape, basePosition=list(part.position),
                                     baseOrientation=p.getQuaternionFromEuler(list(part.euler)),
                                     physicsClientId=client)
            if body != len(built):
                raise RuntimeError("pybullet body ids are not sequential after resetSimulation")
            built.append(part)
        return built

    def render(self, layout: Layout, camera: Camera, lighting: Lighting = Lighting()) -> Render:
        """Render ``layout`` from ``camera``: RGB, labels, metric depth and world points."""
        forward, left, up = camera.basis()
        axis, bound, side = _clip_plane(camera)
        visible = [t for t in (_trim(q, axis, bound, side) for q in layout.parts) if t is not None]
        parts = self._build(visible)
        p, client = self._connect()
        eye = np.asarray(camera.position, dtype=np.float64)
        view = p.computeViewMatrix(eye.tolist(), (eye + forward).tolist(), up.tolist())
        proj = p.computeProjectionMatrixFOV(camera.vfov_deg, camera.width / camera.height, NEAR, FAR)
        _, _, rgba, zbuf, seg = p.getCameraImage(
            camera.width, camera.height, view, proj, renderer=p.ER_TINY_RENDERER,
            shadow=int(lighting.shadow), lightDirection=list(lighting.direction),
            lightColor=list(lighting.color), lightDistance=100.0,
            lightAmbientCoeff=lighting.ambient, lightDiffuseCoeff=lighting.diffuse,
            lightSpecularCoeff=lighting.specular, physicsClientId=client)
        h, w = camera.height, camera.width
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3].copy()
        part = np.asarray(seg, dtype=np.int64).reshape(h, w)
        part = np.where((part >= 0) & (part < len(parts)), part & 0xFFFFFF, -1).astype(np.int32)
        zb = np.asarray(zbuf, dtype=np.float64).reshape(h, w)
        depth = (FAR * NEAR / (FAR - (FAR - NEAR) * zb)).astype(np.float32)
        depth[part < 0] = np.inf
        part_labels = np.array([q.label for q in parts] + [SKY], dtype=np.uint8)
        labels = part_labels[part]  # index -1 picks the trailing SKY entry
        # Back-project: a pixel (u, v) at z-depth d is eye + d * (forward + x * right + y * down) / f.
        f = camera.focal
        cx, cy = camera.principal_point
        u = (np.arange(w, dtype=np.float32) - cx) / f
        v = (np.arange(h, dtype=np.float32) - cy) / f
        rays = (forward[None, None, :] - u[None, :, None] * left[None, None, :]
                - v[:, None, None] * up[None, None, :]).astype(np.float32)
        finite = np.where(np.isfinite(depth), depth, 0.0)[..., None]
        points = (eye[None, None, :].astype(np.float32) + rays * finite).astype(np.float32)
        return Render(rgb=rgb, part=part, labels=labels, depth=depth, points=points, camera=camera, parts=parts)


def ray_directions(camera: Camera) -> np.ndarray:
    """Unit viewing ray per pixel in the world frame, (H, W, 3) float32."""
    forward, left, up = camera.basis()
    f = camera.focal
    cx, cy = camera.principal_point
    u = (np.arange(camera.width, dtype=np.float32) - cx) / f
    v = (np.arange(camera.height, dtype=np.float32) - cy) / f
    rays = forward[None, None, :] - u[None, :, None] * left[None, None, :] - v[:, None, None] * up[None, None, :]
    return (rays / np.linalg.norm(rays, axis=-1, keepdims=True)).astype(np.float32)
