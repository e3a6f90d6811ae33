"""The reference way to run the network, as the authors' notebooks do: the speed baseline.

PyTorch eager, fp32, default (NCHW) memory format, and the chained residual pooling's
5x5 max-pools as one ``nn.MaxPool2d(5, 1, 2)`` each, exactly as in the reference code
(hydranet computes them as 5x1 then 1x5, which is equal and cheaper: that is one of
hydranet's own optimisations, so the baseline must not have it).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..model import HydraNet
from ..model.decoder import SeparableMaxPool


def reference_copy(model: HydraNet) -> HydraNet:
    """A copy of ``model`` with plain ``nn.MaxPool2d`` pools and NCHW-contiguous weights."""
    ref = copy.deepcopy(model).eval()
    for module in list(ref.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, SeparableMaxPool):
                k = child.kernel_size
                setattr(module, name, nn.MaxPool2d(k, stride=1, padding=k // 2))
    return ref.to(memory_format=torch.contiguous_format)


class ReferenceEagerBackend:
    """PyTorch eager fp32 in the default memory format with 5x5 max-pools: the authors' way."""

    name = "torch-reference"
    precision = "fp32"

    def __init__(self, model: HydraNet) -> None:
        self.model = reference_copy(model)
        self.config = model.config

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():  # what the notebooks use (not inference_mode)
            out = self.model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        return {k: v.numpy() for k, v in out.items()}
