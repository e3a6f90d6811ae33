"""Synthetic driving scenes as samples: single random frames, drives, and a torch Dataset.

Every sample follows hydranet's sample protocol: ``image`` RGB uint8, ``segmentation``
uint8 CamVid-11 ids (every pixel is labelled, so nothing is 255), ``depth`` float32
metres along the optical axis with **0 = missing for sky and for anything farther
than** ``MAX_DEPTH`` (80 m, the default model's depth range), and ``name``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..sample import Sample
from .layout import Layout, generate_layout
from .renderer import Camera, SceneRenderer
from .shading import CONDITIONS, sample_params, lighting_for, shade

MAX_DEPTH = 80.0
# Bumped whenever layouts or shading change, so caches of older renders are not reused.
GENERATOR_VERSION = 2  # 2: samples carry the camera's focal length
DEFAULT_SIZE: tuple[int, int] = (360, 480)  # CamVid's height x width
DRIVE_CONDITIONS: tuple[str, ...] = ("clear", "rain", "fog", "night")
# Side cameras of multi-camera rigs (nuScenes, Waymo, Argoverse) look 45-110 degrees off the
# driving direction; 35-100 covers the front-side views.
SIDE_YAW_DEG: tuple[float, float] = (35.0, 100.0)
SIDE_STREET_START = -40.0  # metres; a forward view's street starts at -2


def scene_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed for scene ``index`` of a dataset seeded ``seed``."""
    digest = hashlib.sha256(f"hydranet-synthetic:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _depth_target(depth: np.ndarray) -> np.ndarray:
    out = np.where(np.isfinite(depth) & (depth <= MAX_DEPTH), depth, 0.0)
    return out.astype(np.float32)


def render_frame(layout: Layout, camera: Camera, condition: str, rng: np.random.Generator,
                 renderer: SceneRenderer, name: str) -> Sample:
    """Render and shade one frame of ``layout`` as a sample dict."""
    params = sample_params(condition, rng)
    render = renderer.render(layout, camera, lighting_for(params))
    image = shade(render, layout, params, rng)
    return {"image": image, "segmentation": render.labels.copy(), "depth": _depth_target(render.depth),
            "name": name, "condition": condition, "focal": float(camera.focal)}


def random_camera(layout: Layout, rng: np.random.Generator, size: tuple[int, int]) -> Camera:
    """A car-mounted camera somewhere near the start of the street, with pose and lens jitter."""
    lane_offset = float(rng.uniform(-0.5, 0.5))
    return Camera(position=(float(rng.uniform(0, 8)), layout.ego_lane_y + lane_offset, float(rng.uniform(1.2, 1.7))),
                  yaw=math.radians(float(rng.uniform(-6, 6))), pitch=math.radians(float(rng.uniform(-4, 2))),
                  roll=math.radians(float(rng.uniform(-1.5, 1.5))), height=size[0], width=size[1],
                  hfov_deg=float(rng.uniform(55, 68)))


def side_yaw(seed: int, side_cameras: float) -> float:
    """The extra yaw (radians) of scene ``seed``'s camera: 0, or with probability
    ``side_cameras`` a side view of ``SIDE_YAW_DEG`` to the left or right.

    Drawn from its own stream so that scenes with ``side_cameras=0`` render exactly as before."""
    if side_cameras <= 0.0:
        return 0.0
    rng = np.random.default_rng([seed, 0x5D1E])
    if rng.random() >= side_cameras:
        return 0.0
    return math.radians(float(rng.choice([-1.0, 1.0])) * float(rng.uniform(*SIDE_YAW_DEG)))


def render_scene(seed: int, condition: str = "clear", size: tuple[int, int] = DEFAULT_SIZE,
                 renderer: SceneRenderer | None = None, side_cameras: float = 0.0,
                 large_scenery: float = 0.0) -> Sample:
    """One random street from a random camera pose under ``condition``; deterministic by ``seed``.

    ``side_cameras`` is the probability that the camera looks to the side of the street
    (see :func:`side_yaw`) rather than along it; ``large_scenery`` the probability that its
    buildings and trees are grown to a city centre's sizes (see :func:`generate_layout`)."""
    own = renderer is None
    renderer = renderer or SceneRenderer()
    try:
        rng = np.random.default_rng(seed)
        extra_yaw = side_yaw(seed, side_cameras)
        large = large_scenery > 0.0 and np.random.default_rng([seed, 0x1A26E]).random() < large_scenery
        # A side view also sees the street behind the camera, so the street must start well before it.
        layout = generate_layout(int(rng.integers(1 << 62)), large_scenery=large,
                                 **({"start": SIDE_STREET_START} if extra_yaw else {}))
        camera = random_camera(layout, rng, size)
        if extra_yaw:
            camera = dataclasses.replace(camera, yaw=camera.yaw + extra_yaw)
        return render_frame(layout, camera, condition, rng, renderer, f"synthetic-{seed}-{condition}")
    finally:
        if own:
            renderer.close()


def render_drive(seed: int = 0, conditions: Sequence[str] = DRIVE_CONDITIONS, frames: int = 10,
                 step: float = 1.5, size: tuple[int, int] = DEFAULT_SIZE,
                 renderer: SceneRenderer | None = None) -> dict[str, list[Sample]]:
    """A short drive down one street (``frames`` frames, ``step`` metres apart) under each condition.

    The street, the camera path and the random draws per frame are the same for every
    condition, so the conditions differ only in light and weather.
    """
    for c in conditions:
        if c not in CONDITIONS:
            raise ValueError(f"unknown condition {c!r}; choose from {', '.join(CONDITIONS)}")
    own = renderer is None
    renderer = renderer or SceneRenderer()
    try:
        layout = generate_layout(scene_seed(seed, -1), clear_ahead=frames * step + 10.0)
        out: dict[str, list[Sample]] = {}
        for condition in conditions:
            frames_out = []
            for i in range(frames):
                rng = np.random.default_rng([seed, i])
                camera = Camera(position=(i * step, layout.ego_lane_y, 1.45),
                                yaw=math.radians(0.6 * math.sin(i / 3.0)), pitch=math.radians(-1.5),
                                height=size[0], width=size[1], hfov_deg=60.0)
                frames_out.append(render_frame(layout, camera, condition, rng, renderer,
                                               f"drive{seed}-{condition}-{i:03d}"))
            out[condition] = frames_out
        return out
    finally:
        if own:
            renderer.close()


def render_video(seed: int = 0, frames: int = 12, step: float = 1.2, size: tuple[int, int] = DEFAULT_SIZE,
                 condition: str = "clear", hfov_deg: float = 60.0, renderer: SceneRenderer | None = None,
                 texture: float = 0.0, noise: float = 1.0) -> list[Sample]:
    """Consecutive frames of one drive with exact ego-motion, for self-supervised depth.

    Unlike :func:`render_drive`, the light (sun, exposure, weather) is drawn once for the
    whole drive, as a real camera sees it; only the sensor noise is new in every frame. The
    camera moves ``step`` metres per frame along the lane with a slow yaw and height sway.
    Each sample adds ``pose`` (4x4 camera-to-world, OpenCV axes: x right, y down, z forward)
    and ``intrinsics`` (3x3 K) to the usual image, labels and depth. ``texture`` adds fine
    surface texture (relative contrast, e.g. 0.3), fixed in the world like the rest.
    ``noise`` scales the sensor noise's standard deviation (1: the training streets', about 8
    grey levels at mid grey in clear light, new in every frame).
    """
    own = renderer is None
    renderer = renderer or SceneRenderer()
    try:
        layout = generate_layout(scene_seed(seed, -2), clear_ahead=frames * step + 10.0)
        params = sample_params(condition, np.random.default_rng([seed, 1 << 20]))
        out: list[Sample] = []
        for i in range(frames):
            camera = Camera(position=(i * step, layout.ego_lane_y + 0.3 * math.sin(i / 4.0), 1.45),
                            yaw=math.radians(3.0 * math.sin(i / 5.0)), pitch=math.radians(-1.5),
                            height=size[0], width=size[1], hfov_deg=hfov_deg)
            render = renderer.render(layout, camera, lighting_for(params))
            image = shade(render, layout, params, np.random.default_rng([seed, i]), texture=texture,
                          noise=noise)
            out.append({"image": image, "segmentation": render.labels.copy(), "depth": _depth_target(render.depth),
                        "name": f"video{seed}-{condition}-{i:03d}", "condition": condition,
                        "focal": float(camera.focal), "pose": camera.pose(), "intrinsics": camera.intrinsics()})
        return out
    finally:
        if own:
            renderer.close()


@dataclass(frozen=True)
class _Item:
    scene: int
    condition: str


class SyntheticDrivingDataset:
    """``num_scenes`` random streets with segmentation and depth; a torch-style map Dataset.

    Scene ``i`` gets condition ``conditions[i % len(conditions)]`` and is fully
    determined by ``(seed, i)``; a fraction ``side_cameras`` of the scenes is seen by a camera
    looking to the side of the street, as the side cameras of a multi-camera rig do, and a
    fraction ``large_scenery`` has a city centre's tall buildings and large trees. With
    ``cache_dir`` each rendered sample is stored
    as a compressed ``.npz`` and read back on later epochs or runs (rendering costs
    a few tenths of a second per frame on a CPU).
    """

    def __init__(self, num_scenes: int, seed: int = 0, conditions: Sequence[str] = CONDITIONS,
                 size: tuple[int, int] = DEFAULT_SIZE, cache_dir: str | Path | None = None,
                 side_cameras: float = 0.0, large_scenery: float = 0.0) -> None:
        if num_scenes < 1:
            raise ValueError("num_scenes must be at least 1")
        for name, p in (("side_cameras", side_cameras), ("large_scenery", large_scenery)):
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], not {p}")
        bad = [c for c in conditions if c not in CONDITIONS]
        if bad or not conditions:
            raise ValueError(f"unknown condition(s) {bad}; choose from {', '.join(CONDITIONS)}")
        self.num_scenes = int(num_scenes)
        self.seed = int(seed)
        self.conditions = tuple(conditions)
        self.size = (int(size[0]), int(size[1]))
        self.side_cameras = float(side_cameras)
        self.large_scenery = float(large_scenery)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self._renderer: SceneRenderer | None = None

    def __len__(self) -> int:
        return self.num_scenes

    def _item(self, index: int) -> _Item:
        if not 0 <= index < self.num_scenes:
            raise IndexError(f"scene {index} out of range 0..{self.num_scenes - 1}")
        return _Item(index, self.conditions[index % len(self.conditions)])

    def _cache_path(self, item: _Item) -> Path | None:
        if self.cache_dir is None:
            return None
        h, w = self.size
        variant = f"_side{self.side_cameras:g}" if self.side_cameras > 0 else ""
        variant += f"_large{self.large_scenery:g}" if self.large_scenery > 0 else ""
        return (self.cache_dir / f"v{GENERATOR_VERSION}_s{self.seed}_{h}x{w}{variant}"
                / f"{item.scene:06d}_{item.condition}.npz")

    def __getitem__(self, index: int) -> Sample:
        item = self._item(int(index))
        path = self._cache_path(item)
        if path is not None and path.is_file():
            try:
                with np.load(path) as data:
                    return {"image": data["image"], "segmentation": data["segmentation"],
                            "depth": data["depth"], "name": str(data["name"]), "condition": item.condition,
                            "focal": float(data["focal"])}
            except (OSError, ValueError, KeyError, EOFError):
                pass  # a damaged cache entry is simply rendered again
        if self._renderer is None:
            self._renderer = SceneRenderer()
        sample = render_scene(scene_seed(self.seed, item.scene), item.condition, self.size, self._renderer,
                              side_cameras=self.side_cameras, large_scenery=self.large_scenery)
        sample["name"] = f"synthetic-s{self.seed}-{item.scene:06d}-{item.condition}"
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp.npz")
            np.savez_compressed(tmp, image=sample["image"], segmentation=sample["segmentation"],
                                depth=sample["depth"], name=np.array(sample["name"]),
                                focal=np.array(sample["focal"]))
            tmp.replace(path)
        return sample

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_renderer"] = None  # each DataLoader worker opens its own pybullet connection
        return state
