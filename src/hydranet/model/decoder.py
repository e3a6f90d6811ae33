"""Light-Weight RefineNet decoder blocks (Nekrasov et al., BMVC 2018)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import conv1x1


class SeparableMaxPool(nn.Module):
    """k x k max-pooling, stride 1, 'same' padding, computed as k x 1 then 1 x k.

    A max over a square window equals the max over its row maxima, so this is
    exactly ``nn.MaxPool2d(k, 1, k // 2)``, but about k/2 times cheaper: the
    chained residual pools dominate the network's CPU time otherwise.
    """

    def __init__(self, kernel_size: int = 5) -> None:
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: Tensor) -> Tensor:
        k, p = self.kernel_size, self.kernel_size // 2
        x = F.max_pool2d(x, (k, 1), stride=1, padding=(p, 0))
        return F.max_pool2d(x, (1, k), stride=1, padding=(0, p))


class CRPBlock(nn.Module):
    """Chained residual pooling: ``top = conv(pool(top)); x = x + top``, repeated.

    Pooling acts on the running branch ``top``, not on the accumulated sum.
    """

    def __init__(self, channels: int, num_stages: int = 4, depthwise: bool = False) -> None:
        super().__init__()
        self.num_stages = num_stages
        for i in range(num_stages):
            # Attribute names are those of the released checkpoints.
            self.add_module(f"{i + 1}_outvar_dimred",
                            conv1x1(channels, channels, groups=channels if depthwise else 1))
        self.pool = SeparableMaxPool(5)

    def forward(self, x: Tensor) -> Tensor:
        top = x
        for i in range(self.num_stages):
            top = getattr(self, f"{i + 1}_outvar_dimred")(self.pool(top))
            x = top + x
        return x


def crp(channels: int, num_stages: int = 4, depthwise: bool = False) -> nn.Sequential:
    """A CRP block wrapped in ``Sequential`` (the released keys read ``crp4.0.1_outvar_dimred``)."""
    return nn.Sequential(CRPBlock(channels, num_stages, depthwise))


def upsample_like(x: Tensor, reference: Tensor) -> Tensor:
    """Bilinear resize of ``x`` to ``reference``'s spatial size (``align_corners=False``, as the reference)."""
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)
