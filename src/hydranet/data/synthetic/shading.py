"""From a TinyRenderer frame to a camera image: surface detail, sky, light, weather, sensor.

Surface detail (lane markings, paving joints, windows, foliage) is painted in
world coordinates after rendering, so it stays put as the camera moves. Fog and
rain come from :func:`hydranet.data.weather.apply_weather` (fog with the exact
depth); what is specific to a street at dusk and night — headlights, street
lamps, lit windows, glowing lamps — is computed here from the scene's geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..weather import apply_weather
from .layout import (
    ASPHALT,
    FACADE,
    FOLIAGE,
    HEADLIGHT,
    LAMP,
    PAVING,
    TAILLIGHT,
    Layout,
)
from .renderer import Camera, Lighting, Render, ray_directions

CONDITIONS: tuple[str, ...] = ("clear", "overcast", "rain", "fog", "dusk", "night")


@dataclass(frozen=True)
class ConditionParams:
    """Random choices of one condition for one frame (sun, severity, exposure)."""

    name: str
    sun_azimuth: float
    sun_elevation: float
    severity: int
    exposure: float
    noise: float


def sample_params(condition: str, rng: np.random.Generator) -> ConditionParams:
    """Draw the sun position, weather severity, exposure and sensor noise for ``condition``."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")
    elevation = {"clear": (25, 65), "overcast": (30, 70), "rain": (30, 70), "fog": (30, 70),
                 "dusk": (3, 10), "night": (-20, -10)}[condition]
    noise = {"clear": 1.5, "overcast": 1.5, "rain": 2.0, "fog": 1.5, "dusk": 3.0, "night": 4.0}[condition]
    return ConditionParams(
        name=condition,
        sun_azimuth=float(rng.uniform(0, 2 * math.pi)),
        sun_elevation=math.radians(float(rng.uniform(*elevation))),
        severity=int(rng.integers(2, 5)),
        exposure=float(rng.uniform(0.9, 1.1)),
        noise=noise * float(rng.uniform(0.7, 1.3)),
    )


def lighting_for(params: ConditionParams) -> Lighting:
    """The renderer's light for a condition (night renders plain albedo, lit afterwards)."""
    el, az = params.sun_elevation, params.sun_azimuth
    direction = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
    if params.name == "clear":
        return Lighting(direction, (1.0, 0.98, 0.92), ambient=0.5, diffuse=0.6, specular=0.05, shadow=True)
    if params.name == "dusk":
        return Lighting(direction, (1.0, 0.7, 0.45), ambient=0.45, diffuse=0.45, specular=0.02, shadow=True)
    if params.name == "night":
        return Lighting((0.0, 0.0, 1.0), (1.0, 1.0, 1.0), ambient=1.0, diffuse=0.0, specular=0.0, shadow=False)
    # Overcast light: diffuse sky, no hard shadows.
    return Lighting(direction, (0.95, 0.97, 1.0), ambient=0.75, diffuse=0.3, specular=0.0, shadow=False)


# --------------------------------------------------------------------------- texture
_NOISE = np.random.default_rng(12345).random((256, 256)).astype(np.float32)


def value_noise(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """Smooth pseudo-random values in [0, 1) at world coordinates ``(a, b) / scale`` (tiles every 256)."""
    a = a / scale
    b = b / scale
    ia, ib = np.floor(a), np.floor(b)
    fa, fb = a - ia, b - ib
    fa, fb = fa * fa * (3 - 2 * fa), fb * fb * (3 - 2 * fb)
    ia = ia.astype(np.int64) & 255
    ib = ib.astype(np.int64) & 255
    ja, jb = (ia + 1) & 255, (ib + 1) & 255
    n = _NOISE
    top = n[ia, ib] * (1 - fb) + n[ia, jb] * fb
    bottom = n[ja, ib] * (1 - fb) + n[ja, jb] * fb
    return (top * (1 - fa) + bottom * fa).astype(np.float32)


def _hash01(*keys: np.ndarray) -> np.ndarray:
    """Deterministic per-cell random value in [0, 1) from integer keys."""
    h = np.zeros(np.broadcast(*keys).shape, dtype=np.uint64)
    for k in keys:
        h = (h ^ (np.asarray(k).astype(np.int64).astype(np.uint64) + np.uint64(0x9E3779B9))) * np.uint64(0x85EBCA6B)
        h ^= h >> np.uint64(13)
    return ((h & np.uint64(0xFFFF)).astype(np.float32)) / 65536.0


def _window_cells(points: np.ndarray, mask: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window mask and a per-window random value for facade pixels (floors of 3 m, bays of 2.6 m)."""
    p = points[mask]
    u = p[:, 0] + p[:, 1]  # along whichever facade the pixel lies on (faces are axis-aligned)
    v = p[:, 2]
    fu, fv = (u / 2.6) % 1.0, (v / 3.0) % 1.0
    window = (fu > 0.22) & (fu < 0.78) & (fv > 0.3) & (fv < 0.82) & (v > 2.8)
    shop = (v > 0.6) & (v < 2.6) & ((u / 6.0) % 1.0 > 0.15) & ((u / 6.0) % 1.0 < 0.85)
    cell = _hash01(np.floor(u / 2.6), np.floor(v / 3.0), seeds[mask])
    out = np.zeros(mask.shape, bool)
    out[mask] = window | (shop & (seeds[mask] % 3 == 0))
    val = np.zeros(mask.shape, np.float32)
    val[mask] = cell
    return out, val


def surface_detail(render: Render, layout: Layout, wet: bool = False, fine: float = 0.0) -> np.ndarray:
    """Albedo multiplier (H, W, 3) painting markings, joints, windows and grain in world coordinates.

    ``fine`` adds texture at 5-15 cm (asphalt grain, brick, bark), ``fine`` its relative
    contrast: what a real camera sees on every surface and view synthesis needs to match
    pixels between frames (0: the smooth surfaces of the training streets).
    """
    h, w = render.part.shape
    materials = np.array([q.material for q in render.parts] + [-1], dtype=np.int64)[render.part]
    seeds = np.array([q.seed for q in render.parts] + [0], dtype=np.int64)[render.part]
    colors = np.array([q.color for q in render.parts] + [(1.0, 1.0, 1.0)], dtype=np.float32)[render.part]
    x, y, z = render.points[..., 0], render.points[..., 1], render.points[..., 2]
    mult = np.ones((h, w, 3), np.float32)
    grain = 0.92 + 0.16 * value_noise(x + z, y + 0.37 * z, 0.35)
    if fine > 0:
        octaves = 0.6 * value_noise(1.7 * x + z, 1.3 * y - 0.7 * z, 0.05) + \
            0.4 * value_noise(x - 1.1 * z, y + 0.9 * z + 17.0, 0.15)
        grain = grain * (1.0 + fine * (2.0 * octaves - 1.0))
    mult *= grain[..., None]

    road = materials == ASPHALT
    if road.any():
        coarse = 0.85 + 0.3 * value_noise(x, y, 3.0)
        mult[road] *= coarse[road, None]
        paint = np.zeros((h, w), bool)
        for line in layout.lane_lines:
            paint |= (np.abs(y - line) < 0.07) & ((x % 9.0) < 3.0)
        for line in layout.edge_lines:
            paint |= np.abs(y - line) < 0.08
        for cx in layout.crossings:
            paint |= (np.abs(x - cx) < 2.0) & ((np.floor(y / 0.6) % 2) == 0) & (np.abs(y) < layout.road_half_width)
        paint &= road
        wear = 0.75 + 0.25 * value_noise(x * 3, y * 3, 1.0)
        target = np.array([0.88, 0.88, 0.85], np.float32)
        mult[paint] = (target[None, :] * wear[paint, None]) / np.maximum(colors[paint], 0.05)
    paving = materials == PAVING
    if paving.any():
        joint = ((x % 0.6) < 0.035) | ((y % 0.6) < 0.035)
        mult[paving & joint] *= 0.78
    facade = materials == FACADE
    if facade.any():
        windows, cell = _window_cells(render.points, facade, seeds)
        glass = np.array([0.16, 0.19, 0.24], np.float32) * (0.7 + 0.6 * cell[windows, None])
        mult[windows] = glass / np.maximum(colors[windows], 0.05)
    foliage = materials == FOLIAGE
    if foliage.any():
        leaves = 0.55 + 0.8 * value_noise(x * 1.3 + z, y * 1.3 - z, 0.25)
        mult[foliage] *= leaves[foliage, None]
    if wet:
        ground = road | paving
        mult[ground] *= 0.7
    return mult


# --------------------------------------------------------------------------- sky
def sky_colors(camera: Camera, params: ConditionParams) -> np.ndarray:
    """Sky radiance (H, W, 3) in [0, 1] from the viewing direction, per condition."""
    rays = ray_directions(camera)
    elev = np.clip(rays[..., 2], -0.2, 1.0)[..., None]
    t = np.clip(elev / 0.5, 0, 1) ** 0.6
    name = params.name
    if name == "clear":
        horizon, zenith = np.array([0.78, 0.86, 0.95]), np.array([0.32, 0.52, 0.85])
    elif name == "dusk":
        horizon, zenith = np.array([0.98, 0.62, 0.35]), np.array([0.30, 0.28, 0.50])
    elif name == "night":
        horizon, zenith = np.array([0.10, 0.07, 0.06]), np.array([0.012, 0.016, 0.035])
    else:
        horizon, zenith = np.array([0.80, 0.81, 0.82]), np.array([0.62, 0.64, 0.68])
    sky = (horizon * (1 - t) + zenith * t).astype(np.float32)
    az = np.arctan2(rays[..., 1], rays[..., 0])
    clouds = value_noise(az * 12.0 + 40.0, elev[..., 0] * 30.0, 1.0)
    if name in ("overcast", "rain", "fog"):
        sky *= (0.9 + 0.18 * clouds)[..., None]
    elif name == "clear":
        puff = np.clip((clouds - 0.6) * 3.0, 0, 1)[..., None]
        sky = sky * (1 - puff * 0.7) + 0.95 * puff * 0.7
    if name in ("clear", "dusk"):
        sun = np.array([math.cos(params.sun_elevation) * math.cos(params.sun_azimuth),
                        math.cos(params.sun_elevation) * math.sin(params.sun_azimuth),
                        math.sin(params.sun_elevation)], np.float32)
        cos = np.clip(rays @ sun, -1, 1)
        glow = np.exp((cos - 1.0) * 40.0)[..., None] * (0.6 if name == "clear" else 0.9)
        sky = sky + glow * np.array([1.0, 0.9, 0.7], np.float32)
    return np.clip(sky, 0, 1.5).astype(np.float32)


# --------------------------------------------------------------------------- lights
def _normals(points: np.ndarray) -> np.ndarray:
    """Surface normals from the world points' image-space gradients (unit, pointing anywhere)."""
    du = np.gradient(points, axis=1)
    dv = np.gradient(points, axis=0)
    n = np.cross(du, dv)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-6)


def artificial_light(render: Render, layout: Layout, strength: float = 1.0) -> np.ndarray:
    """Irradiance (H, W, 3) from the ego car's low beams, street lamps and other cars' headlights."""
    pts = render.points
    h, w = render.part.shape
    solid = render.part >= 0
    normals = _normals(pts)
    labels = render.labels
    # Ground normals are exactly up; gradients are only needed for the rest.
    normals[(labels == 3) | (labels == 4)] = (0.0, 0.0, 1.0)
    light = np.zeros((h, w, 3), np.float32)
    forward, left, up = render.camera.basis()
    cam = np.asarray(render.camera.position, np.float32)

    def add(source: np.ndarray, color: np.ndarray, power: float, axis: np.ndarray | None, width: float,
            soft: float = 1.0) -> None:
        vec = source[None, None, :] - pts
        dist2 = np.maximum((vec ** 2).sum(-1), 0.25)
        dirs = vec / np.sqrt(dist2)[..., None]
        lambert = np.abs((normals * dirs).sum(-1))  # normal sign is arbitrary from gradients
        gain = power / (dist2 + soft) * (0.3 + 0.7 * lambert)
        if axis is not None:
            cos = (-dirs * axis[None, None, :]).sum(-1)
            gain *= np.exp(-((np.arccos(np.clip(cos, -1, 1)) / width) ** 2))
        light[:] += (gain[..., None] * color[None, None, :]).astype(np.float32)

    # Ego low beams: two lamps 0.7 m above the road, aimed slightly down.
    beam = forward * math.cos(0.05) - up * math.sin(0.05)
    beam[2] = min(beam[2], -0.03)
    beam /= np.linalg.norm(beam)
    ground_cam = cam - up * (cam[2] - 0.7) + forward * 1.5
    for side in (-0.7, 0.7):
        # The soft term stands for the beam cut-off that keeps the road just ahead from burning out.
        add(ground_cam + left * side, np.array([1.0, 0.97, 0.9], np.float32), 45.0 * strength, beam, 0.32, 30.0)
    for light_src in layout.lights:
        src = np.asarray(light_src.position, np.float32)
        if not (cam[0] - 5 < src[0] < cam[0] + 90):
            continue
        color = np.asarray(light_src.color, np.float32)
        if light_src.kind == "street":
            add(src, color, 45.0 * strength, np.array([0.0, 0.0, -1.0], np.float32), 1.1)
        elif light_src.kind == "head":
            axis = np.array([light_src.direction, 0.0, -0.05], np.float32)
            add(src, color, 60.0 * strength, axis / np.linalg.norm(axis), 0.35)
    light[~solid] = 0.0
    return light


def emission(render: Render, layout: Layout, params: ConditionParams, points_mask_windows: bool = True) -> np.ndarray:
    """Self-lit surfaces at dusk and night: lamp heads, car lights, some windows (H, W, 3)."""
    h, w = render.part.shape
    materials = np.array([q.material for q in render.parts] + [-1], dtype=np.int64)[render.part]
    seeds = np.array([q.seed for q in render.parts] + [0], dtype=np.int64)[render.part]
    out = np.zeros((h, w, 3), np.float32)
    out[materials == LAMP] = (1.6, 1.4, 1.1)
    # Car light parts belong to moving cars when a matching light source exists nearby.
    if layout.lights:
        src = np.array([lt.position for lt in layout.lights if lt.kind in ("head", "tail")] or [(1e9, 1e9, 1e9)],
                       np.float32)
        for mat, color in ((HEADLIGHT, (1.8, 1.75, 1.6)), (TAILLIGHT, (1.4, 0.1, 0.05))):
            mask = materials == mat
            if mask.any():
                p = render.points[mask]
                d = np.min(np.abs(p[:, None, 0] - src[None, :, 0]) + np.abs(p[:, None, 1] - src[None, :, 1]), axis=1)
                lit = d < 1.5
                vals = np.zeros((int(mask.sum()), 3), np.float32)
                vals[lit] = color
                out[mask] = vals
    facade = materials == FACADE
    if facade.any() and points_mask_windows:
        windows, cell = _window_cells(render.points, facade, seeds)
        lit = windows & (cell > 0.62)
        out[lit] = np.array([1.0, 0.78, 0.45], np.float32) * (0.35 + 0.4 * cell[lit, None])
    return out * (0.5 if params.name == "dusk" else 1.0)


def _bloom(radiance: np.ndarray, threshold: float = 0.9) -> np.ndarray:
    bright = np.clip(radiance - threshold, 0, None)
    return cv2.GaussianBlur(bright, (0, 0), 6.0) * 0.8 + cv2.GaussianBlur(bright, (0, 0), 2.0) * 0.5


# --------------------------------------------------------------------------- pipeline
def _sensor(radiance: np.ndarray, params: ConditionParams, rng: np.random.Generator,
            noise: float = 1.0) -> np.ndarray:
    """Exposure, vignetting, slight optical blur, shot and read noise (``noise`` times their
    standard deviation), 8-bit quantisation."""
    h, w = radiance.shape[:2]
    img = radiance * params.exposure
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    img = img * (1.0 - 0.12 * r2)[..., None]
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img = np.clip(img, 0, 1)
    sigma = params.noise / 255.0
    shot = rng.standard_normal(img.shape).astype(np.float32) * (noise * np.sqrt(img * 0.002 + sigma ** 2))
    return np.clip(np.rint((img + shot) * 255.0), 0, 255).astype(np.uint8)


def shade(render: Render, layout: Layout, params: ConditionParams, rng: np.random.Generator,
          texture: float = 0.0, noise: float = 1.0) -> np.ndarray:
    """The final RGB uint8 camera image of ``render`` under condition ``params``
    (``texture``: fine surface texture, see :func:`surface_detail`; ``noise``: the sensor
    noise's standard deviation relative to the training streets')."""
    name = params.name
    base = render.rgb.astype(np.float32) / 255.0
    detail = surface_detail(render, layout, wet=name == "rain", fine=texture)
    radiance = np.clip(base * detail, 0, 1.5)
    sky = render.part < 0
    radiance[sky] = sky_colors(render.camera, params)[sky]
    if name in ("overcast", "rain", "fog"):
        grey = radiance.mean(-1, keepdims=True)
        radiance = radiance * 0.8 + grey * 0.2  # flat light washes colours out
    if name == "rain":
        radiance *= 0.8
    if name == "dusk":
        radiance *= 0.6
        radiance += base * detail * artificial_light(render, layout, 0.4)
        radiance += emission(render, layout, params)
        radiance += _bloom(radiance)
    if name == "night":
        albedo = base * detail
        ambient = np.array([0.035, 0.04, 0.055], np.float32)
        radiance = albedo * (ambient + artificial_light(render, layout, 1.0))
        radiance[sky] = sky_colors(render.camera, params)[sky]
        radiance += emission(render, layout, params)
        radiance += _bloom(radiance)
        radiance = radiance / (1.0 + radiance * 0.35)  # highlight roll-off of the camera curve
        radiance *= 1.3
    image = _sensor(radiance, params, rng, noise)
    if name in ("rain", "fog"):
        depth = np.where(np.isfinite(render.depth), render.depth, 0.0).astype(np.float32)
        image = apply_weather(image, name, params.severity, depth=depth, rng=rng)
    return image
