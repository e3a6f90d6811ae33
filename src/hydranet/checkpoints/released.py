"""Where the authors' released checkpoints are downloaded from and cached."""

from __future__ import annotations

import os
from pathlib import Path

from .registry import RELEASED

# The authors' public repository; override with HYDRANET_WEIGHTS_URL (e.g. a mirror).
DEFAULT_BASE_URL = "https://github.com/DrSleep/multi-task-refinenet/raw/master/weights"


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
