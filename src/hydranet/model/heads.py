"""Task heads: a depthwise 1x1 convolution, ReLU6, and a 3x3 convolution to the task's channels."""

from __future__ import annotations

from torch import Tensor, nn

from .layers import conv1x1, conv3x3

# Task name -> (pre-layer attribute, output attribute), names of the released checkpoints.
HEAD_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "depth": ("pre_depth", "depth"),
    "segmentation": ("pre_segm", "segm"),
    "normals": ("pre_normal", "normal"),
}

# Registration order of the reference network (depth before segmentation).
TASK_ORDER: tuple[str, ...] = ("depth", "segmentation", "normals")


def head_layers(in_channels: int, out_channels: int) -> tuple[nn.Conv2d, nn.Conv2d]:
    """The two convolutions of a head: depthwise 1x1 (no bias) and 3x3 with bias."""
    return conv1x1(in_channels, in_channels, groups=in_channels), conv3x3(in_channels, out_channels)


def run_head(pre: nn.Module, out: nn.Module, features: Tensor) -> Tensor:
    """Apply one head; the output has no activation (logits, metres, raw normals)."""
    return out(nn.functional.relu6(pre(features)))
