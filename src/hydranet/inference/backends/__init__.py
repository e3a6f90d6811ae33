"""Inference backends, by name. Each module registers a factory taking a loaded model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import HydranetError
from ...model import HydraNet
from .base import Backend
from .torch_backend import TorchBackend

BackendFactory = Callable[..., Backend]

# name -> factory(model, **options). Optional backends register themselves on import.
BACKENDS: dict[str, BackendFactory] = {"torch": TorchBackend}


def available_backends() -> list[str]:
    """Names of the backends whose dependencies are installed."""
    return list(BACKENDS)


def create_backend(name: str, model: HydraNet, **options: Any) -> Backend:
    """A backend running ``model``; a clear error when its dependency is not installed."""
    if name not in BACKENDS:
        raise HydranetError(f"unknown or unavailable backend {name!r}; available: {', '.join(BACKENDS)}")
    return BACKENDS[name](model, **options)


__all__ = ["BACKENDS", "Backend", "TorchBackend", "available_backends", "create_backend"]
