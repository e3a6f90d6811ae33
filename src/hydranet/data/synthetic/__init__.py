"""Synthetic driving scenes with exact metric depth and CamVid-11 labels (pybullet TinyRenderer).

- ``layout``: random streets made of labelled primitives (deterministic by seed);
- ``renderer``: TinyRenderer frames (RGB, object ids -> labels, z-buffer -> metres);
- ``shading``: surface detail, sky, dusk/night lights, weather and sensor noise;
- ``scenes``: samples, drives and :class:`SyntheticDrivingDataset`.
"""

from .layout import Layout, generate_layout
from .renderer import Camera, SceneRenderer
from .scenes import (
    DRIVE_CONDITIONS,
    MAX_DEPTH,
    SyntheticDrivingDataset,
    render_drive,
    render_video,
    render_scene,
    scene_seed,
)
from .shading import CONDITIONS

__all__ = [
    "CONDITIONS", "Camera", "DRIVE_CONDITIONS", "Layout", "MAX_DEPTH", "SceneRenderer",
    "SyntheticDrivingDataset", "generate_layout", "render_drive", "render_scene", "render_video", "scene_seed",
]

# The training config's dataset builder (``type: synthetic``) looks for this name.
SyntheticDriving = SyntheticDrivingDataset
