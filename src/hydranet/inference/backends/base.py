"""The backend interface: a compiled network that maps a normalised batch to raw outputs."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ...model import ModelConfig


class Backend(Protocol):
    """Runs the network: ``(N, 3, H, W)`` float32 normalised input -> raw outputs at 1/4 size.

    Outputs are the model's: ``"segmentation"`` logits ``(N, C, h, w)``, ``"depth"``
    ``(N, 1, h, w)`` and optionally ``"normals"``, as float32 numpy arrays.
    """

    name: str
    config: ModelConfig

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...
