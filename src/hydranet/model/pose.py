"""The pose network of self-supervised depth training: the motion between two frames.

SfMLearner's / monodepth2's separate pose CNN: the two frames stacked as six channels,
seven strided convolutions, a 1x1 convolution to six numbers per position and their mean:
a rotation vector and a translation ``T_{t->s}`` (camera coordinates, x right, y down,
z forward). The last convolution starts at zero, so a fresh network predicts no motion,
except for a forward motion of ``forward_prior`` metres per frame (a driving camera moves
forward). The rotation is scaled by 0.01 (monodepth2's scale: radians per frame are small);
the translation by 0.1, not monodepth2's 0.01, with which a metre per frame takes thousands
of steps to reach. It is used only by training (the depth network alone runs at inference).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

# monodepth2 normalises the frames of its pose network this way (ImageNet-like statistics).
POSE_MEAN, POSE_STD = 0.45, 0.225


def axis_angle_to_matrix(axis_angle: Tensor, translation: Tensor) -> Tensor:
    """4x4 motions ``(N, 4, 4)`` from rotation vectors ``(N, 3)`` (Rodrigues) and translations ``(N, 3)``.

    Written as ``I + sin(t)/t K + (1 - cos t)/t^2 K^2`` with ``K`` the cross-product matrix of
    the rotation vector itself (not of its unit axis) and Taylor series near ``t = 0``, so the
    gradient at no rotation is the exact one (``dR = K(dv)``). Through the unit axis it is zero
    there, and a pose network whose rotation starts at zero would never learn to rotate.
    """
    n = axis_angle.shape[0]
    theta2 = (axis_angle * axis_angle).sum(dim=1)
    small = theta2 < 1e-6
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)  # never sqrt(0): its gradient is infinite
    theta = torch.sqrt(safe2)
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / safe2)
    x, y, z = axis_angle[:, 0], axis_angle[:, 1], axis_angle[:, 2]
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).reshape(n, 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand(n, 3, 3)
    rot = eye + a[:, None, None] * k + b[:, None, None] * (k @ k)
    out = torch.zeros(n, 4, 4, dtype=axis_angle.dtype, device=axis_angle.device)
    out[:, :3, :3] = rot
    out[:, :3, 3] = translation
    out[:, 3, 3] = 1
    return out


class PoseNet(nn.Module):
    """Relative motion of two RGB frames in [0, 1]: ``forward(target, source) -> (N, 4, 4)`` ``T_{t->s}``."""

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 128, 256, 256, 256),
                 kernels: Sequence[int] = (7, 5, 3, 3, 3, 3, 3), rotation_scale: float = 0.01,
                 translation_scale: float = 0.1, forward_prior: float = 0.5) -> None:
        super().__init__()
        if len(channels) != len(kernels):
            raise ValueError("channels and kernels need one entry per convolution")
        layers: list[nn.Module] = []
        c_in = 6
        for c, k in zip(channels, kernels):
            layers += [nn.Conv2d(c_in, c, k, stride=2, padding=k // 2), nn.ReLU(inplace=True)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(c_in, 6, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # A driving camera moves forward: starting from ``forward_prior`` metres per frame along
        # +z (T_{earlier->later} moves points by -z) puts training in the right basin; from no
        # motion at all it finds a sideways motion that explains vertical edges almost as well.
        with torch.no_grad():
            self.head.bias[5] = -float(forward_prior) / float(translation_scale)
        self.register_buffer("scale", torch.tensor([rotation_scale] * 3 + [translation_scale] * 3),
                             persistent=False)

    def vector(self, target: Tensor, source: Tensor) -> Tensor:
        """The six numbers ``(N, 6)``: rotation vector (radians) then translation."""
        x = (torch.cat([target, source], dim=1) - POSE_MEAN) / POSE_STD
        return self.head(self.features(x)).mean(dim=(2, 3)) * self.scale

    def forward(self, target: Tensor, source: Tensor) -> Tensor:
        v = self.vector(target, source)
        return axis_angle_to_matrix(v[:, :3], v[:, 3:])


POSE_NETWORKS: dict[str, type[PoseNet]] = {"sfmlearner": PoseNet}


def create_pose_net(name: str = "sfmlearner") -> PoseNet:
    """A fresh pose network by name (see :data:`POSE_NETWORKS`)."""
    if name not in POSE_NETWORKS:
        raise KeyError(f"unknown pose network {name!r}; known: {', '.join(POSE_NETWORKS)}")
    return POSE_NETWORKS[name]()


__all__ = ["POSE_NETWORKS", "PoseNet", "axis_angle_to_matrix", "create_pose_net"]
