"""HydraNet: MobileNetV2 encoder, Light-Weight RefineNet decoder and one head per task.

Submodules are registered flat (``layer3``, ``crp4``, ``segm``...) rather than
under ``encoder.`` / ``decoder.`` prefixes because those are the parameter
names of the authors' released checkpoints, which load here with strict key
checking and no renaming.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .decoder import crp, upsample_like
from .encoder import mobilenetv2_stages
from .heads import HEAD_ATTRIBUTES, TASK_ORDER, head_layers, run_head
from .layers import conv1x1

TASK_CHANNELS = {"depth": 1, "normals": 3}


def build_encoder(name: str) -> tuple[list[nn.Module], list[int]]:
    """Eight encoder stages and the channels of stages 3..8, by encoder name."""
    if name == "mobilenetv2":
        return mobilenetv2_stages()
    if name == "efficientnet_lite0":
        from .efficientnet import efficientnet_lite0_stages

        return efficientnet_lite0_stages()
    raise ValueError(f"unknown encoder {name!r}")


class HydraNet(nn.Module):
    """Joint segmentation / depth (/ surface normals) network of Nekrasov et al. (ICRA 2019).

    ``forward`` takes a normalised ``(N, 3, H, W)`` float tensor and returns a dict
    with ``"segmentation"`` logits ``(N, C, h, w)``, ``"depth"`` in metres
    ``(N, 1, h, w)`` and, for three-task models, ``"normals"`` ``(N, 3, h, w)``,
    where ``h = ceil(ceil(H / 2) / 2)`` and likewise ``w``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        width = config.decoder_channels
        stages, taps = build_encoder(config.encoder)
        for i, stage in enumerate(stages, start=1):
            self.add_module(f"layer{i}", stage)
        self.num_stages = len(stages)

        # 1x1 adapters from encoder stages 8..3 to the decoder width.
        for stage, channels in zip(range(8, 2, -1), reversed(taps)):
            self.add_module(f"conv{stage}", conv1x1(channels, width))
        self.crp4 = crp(width)
        self.crp3 = crp(width)
        self.crp2 = crp(width)
        self.crp1 = crp(width, depthwise=True)
        self.conv_adapt4 = conv1x1(width, width)
        self.conv_adapt3 = conv1x1(width, width)
        self.conv_adapt2 = conv1x1(width, width)

        for task in TASK_ORDER:
            if task in config.tasks:
                pre_name, out_name = HEAD_ATTRIBUTES[task]
                pre, out = head_layers(width, TASK_CHANNELS.get(task, config.num_classes))
                self.add_module(pre_name, pre)
                self.add_module(out_name, out)

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.config.tasks

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def encode(self, x: Tensor) -> list[Tensor]:
        """Outputs of encoder stages 3..8 (strides 4, 8, 16, 16, 32, 32)."""
        features = []
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
            if i >= 3:
                features.append(x)
        return features

    def decode(self, features: list[Tensor]) -> Tensor:
        """Light-Weight RefineNet: fuse stages 8..3 into one stride-4 map of the decoder width."""
        l3, l4, l5, l6, l7, l8 = features
        x = F.relu6(self.conv8(l8) + self.conv7(l7))
        x = self.conv_adapt4(self.crp4(x))
        x = upsample_like(x, l6)

        x = F.relu6(self.conv5(l5) + self.conv6(l6) + x)
        x = self.conv_adapt3(self.crp3(x))
        x = upsample_like(x, l4)

        x = F.relu6(x + self.conv4(l4))
        x = self.conv_adapt2(self.crp2(x))
        x = upsample_like(x, l3)

        x = F.relu6(self.conv3(l3) + x)
        return self.crp1(x)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        features = self.decode(self.encode(x))
        outputs = {}
        for task in ("segmentation", "depth", "normals"):
            if task in self.config.tasks:
                pre_name, out_name = HEAD_ATTRIBUTES[task]
                outputs[task] = run_head(getattr(self, pre_name), getattr(self, out_name), features)
        return outputs
