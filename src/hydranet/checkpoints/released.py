"""The authors' released checkpoints: where they live and how to verify them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The authors' public repository; override with HYDRANET_WEIGHTS_URL (e.g. a mirror).
DEFAULT_BASE_URL = "https://github.com/DrSleep/multi-task-refinenet/raw/master/weights"


@dataclass(frozen=True)
class ReleasedWeights:
    """One released checkpoint: the registered name, file name, git blob id and configuration."""

    name: str
    filename: str
    git_blob_id: str
    description: str


RELEASED: dict[str, ReleasedWeights] = {
    w.name: w
    for w in (
        ReleasedWeights("kitti6", "ExpKITTI_joint.ckpt", "d9386a96f748001406c622100ce944333d1967ff",
                        "KITTI: 6 classes + depth"),
        ReleasedWeights("nyud40", "ExpNYUD_joint.ckpt", "56f5f5a6bc08a64f36e83547140add41baa4216d",
                        "NYUDv2: 40 classes + depth"),
        ReleasedWeights("nyud_kitti46", "ExpNYUDKITTI_joint.ckpt",
                        "54f57cc2bd15e5cdfa9f3f1eaba9760951218bfa",
                        "NYUDv2 + KITTI: 46 classes + depth"),
        ReleasedWeights("nyud40_three", "ExpNYUD_three.ckpt", "6f412c152600827cabff5e1b66efad50090c16a7",
                        "NYUDv2: 40 classes + depth + surface normals"),
    )
}


def cache_dir() -> Path:
    """Per-user weights cache: ``$HYDRANET_HOME/weights``, else ``$XDG_CACHE_HOME/hydranet/weights``."""
    if os.environ.get("HYDRANET_HOME"):
        return Path(os.environ["HYDRANET_HOME"]) / "weights"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hydranet" / "weights"


def cached_path(name: str) -> Path:
    """Where the released checkpoint ``name`` is (or would be) cached."""
    return cache_dir() / RELEASED[name].filename


def base_url() -> str:
    return os.environ.get("HYDRANET_WEIGHTS_URL", DEFAULT_BASE_URL).rstrip("/")
