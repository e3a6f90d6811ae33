"""Architecture facts of the configurations: sizes, parameter counts, outputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import hydranet
from hydranet.model import hydranet as custom_hydranet
from hydranet.model.decoder import SeparableMaxPool


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_of_released_configurations():
    assert n_params(hydranet.create_model("kitti6")) == 2_991_687
    assert n_params(hydranet.create_model("nyud40")) == 3_070_057
    # 46 classes: the segmentation 3x3 head grows by (46 - 40) * (256 * 9 + 1).
    assert n_params(hydranet.create_model("nyud_kitti46")) == 3_070_057 + 6 * (256 * 9 + 1)
    # Three tasks: a depthwise 1x1 (256) and a 3x3 head to 3 channels.
    assert n_params(hydranet.create_model("nyud40_three")) == 3_070_057 + 256 + 3 * (256 * 9 + 1)


@pytest.mark.parametrize("name,classes,tasks", [
    ("kitti6", 6, {"segmentation", "depth"}),
    ("nyud40", 40, {"segmentation", "depth"}),
    ("nyud_kitti46", 46, {"segmentation", "depth"}),
    ("nyud40_three", 40, {"segmentation", "depth", "normals"}),
])
@pytest.mark.parametrize("size", [(64, 96), (37, 53)])
def test_outputs_at_quarter_resolution(name, classes, tasks, size):
    torch.manual_seed(0)
    model = hydranet.create_model(name).eval()
    h, w = size
    with torch.no_grad():
        out = model(torch.randn(2, 3, h, w))
    assert set(out) == tasks
    qh, qw = math.ceil(math.ceil(h / 2) / 2), math.ceil(math.ceil(w / 2) / 2)
    assert out["segmentation"].shape == (2, classes, qh, qw)
    assert out["depth"].shape == (2, 1, qh, qw)
    if "normals" in tasks:
        assert out["normals"].shape == (2, 3, qh, qw)


def test_custom_class_count_and_tasks():
    model = custom_hydranet(13, tasks=("segmentation",)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert list(out) == ["segmentation"] and out["segmentation"].shape == (1, 13, 8, 8)
    assert model.config.class_names[12] == "class 12"
    assert "depth.weight" not in model.state_dict()


def test_separable_max_pool_equals_square_max_pool():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 13, 17)
    assert torch.equal(SeparableMaxPool(5)(x), nn.MaxPool2d(5, stride=1, padding=2)(x))


def test_unknown_configuration_is_refused():
    with pytest.raises(KeyError, match="unknown architecture 'kitti7'"):
        hydranet.create_model("kitti7")
    with pytest.raises(ValueError, match="unknown task"):
        custom_hydranet(3, tasks=("segmentation", "flow"))


def test_architecture_names_give_configurations_and_weights_names_give_sources():
    from hydranet.checkpoints import WEIGHTS, weights_for_architecture
    from hydranet.model import model_config

    assert model_config("kitti6").num_classes == 6 and model_config("camvid11_lite0").encoder == "efficientnet_lite0"
    for entry in WEIGHTS.values():
        assert entry.architecture in hydranet.list_models(), entry
    assert weights_for_architecture("camvid11_lite0") == "default"
    assert weights_for_architecture("kitti6") == "kitti6"
    default = hydranet.create_model("camvid11_lite0", weights="default")
    loaded = hydranet.load_model("default")
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), loaded.state_dict().values()))
    assert default.config.name == "default"
    with pytest.raises(hydranet.CheckpointError, match="not weights of architecture kitti6"):
        hydranet.create_model("kitti6", weights="default")
    with pytest.raises(KeyError, match="unknown architecture"):
        hydranet.create_model("default")


def test_predictor_defaults_to_the_bundled_model():
    p = hydranet.Predictor(backend="torch")
    assert p.config.name == "default" and p.config.num_classes == 11
