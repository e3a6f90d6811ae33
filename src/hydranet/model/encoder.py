"""Encoders: lists of stages whose outputs feed the decoder.

An encoder is eight stages (``layer1`` .. ``layer8``) with output strides
2, 2, 4, 8, 16, 16, 32, 32; the decoder taps the outputs of stages 3 to 8.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from .layers import conv_bn_relu6


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection.

    Unlike torchvision's block, the expansion convolution exists even for an
    expansion factor of 1, as in the paper's released network.
    """

    def __init__(self, in_channels: int, out_channels: int, expansion: int, stride: int = 1) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = in_channels == out_channels and stride == 1
        self.output = nn.Sequential(
            conv_bn_relu6(in_channels, hidden, 1),
            conv_bn_relu6(hidden, hidden, 3, stride=stride, groups=hidden),
            conv_bn_relu6(hidden, out_channels, 1, activation=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.output(x)
        return out + x if self.use_residual else out


@dataclass(frozen=True)
class StageConfig:
    """One stage of inverted residual blocks: expansion t, channels c, repeats n, first stride s."""

    expansion: int
    channels: int
    repeats: int
    stride: int


# MobileNetV2 as used by the paper (width 1.0), stages 2..8.
MOBILENETV2_STAGES: tuple[StageConfig, ...] = (
    StageConfig(1, 16, 1, 1),
    StageConfig(6, 24, 2, 2),
    StageConfig(6, 32, 3, 2),
    StageConfig(6, 64, 4, 2),
    StageConfig(6, 96, 3, 1),
    StageConfig(6, 160, 3, 2),
    StageConfig(6, 320, 1, 1),
)


def mobilenetv2_stages(
    stem_channels: int = 32, stages: tuple[StageConfig, ...] = MOBILENETV2_STAGES
) -> tuple[list[nn.Module], list[int]]:
    """Build the paper's MobileNetV2 encoder.

    Returns the eight stages (stem first) and the output channels of stages 3..8.
    """
    modules: list[nn.Module] = [conv_bn_relu6(3, stem_channels, 3, stride=2)]
    in_channels = stem_channels
    for cfg in stages:
        blocks = []
        for i in range(cfg.repeats):
            blocks.append(InvertedResidual(in_channels, cfg.channels, cfg.expansion,
                                           stride=cfg.stride if i == 0 else 1))
            in_channels = cfg.channels
        modules.append(nn.Sequential(*blocks))
    tap_channels = [cfg.channels for cfg in stages[1:]]
    return modules, tap_channels
