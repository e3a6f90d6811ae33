"""Convolution helpers shared by the encoder, decoder and heads."""

from __future__ import annotations

from torch import nn


def conv1x1(in_channels: int, out_channels: int, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution, stride 1."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=1, padding=0, groups=groups, bias=bias)


def conv3x3(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    """3x3 convolution, stride 1, 'same' padding."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=bias)


def conv_bn_relu6(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    activation: bool = True,
) -> nn.Sequential:
    """Convolution (no bias), BatchNorm and optionally ReLU6, as ``Sequential`` indices 0, 1, 2.

    The indices are part of the released checkpoints' key names (``layer1.0.weight``).
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                  padding=kernel_size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)
