"""Reading released checkpoints, writing own weights, and every refusal's message."""

from __future__ import annotations

import collections
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

import hydranet
from hydranet import CheckpointError, WeightsNotFoundError
from hydranet.checkpoints import read_metadata


class NotATensor:  # a pickle that needs code to load
    def __init__(self):
        self.payload = [1, 2, 3]


@pytest.fixture(scope="module")
def reference_state(parity_ckpt):
    return torch.load(parity_ckpt, map_location="cpu", weights_only=True)["state_dict"]


def _outputs(model, seed=0, size=(40, 56)):
    torch.manual_seed(seed)
    with torch.no_grad():
        return model(torch.randn(1, 3, *size))


def test_loads_released_format_in_eval_mode(parity_ckpt):
    model = hydranet.load_model(parity_ckpt)
    assert not model.training
    assert model.config.num_classes == 6 and model.config.tasks == ("segmentation", "depth")
    assert model.config.name == "kitti6"
    assert model.config.class_names[:3] == ["sky", "building", "road"]


def test_module_prefix_and_missing_num_batches_tracked_load(tmp_path, parity_ckpt, reference_state):
    wrapped = {f"module.{k}": v for k, v in reference_state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "dataparallel_2019.ckpt"
    torch.save({"state_dict": wrapped}, path)
    a = _outputs(hydranet.load_model(parity_ckpt))
    b = _outputs(hydranet.load_model(path))
    for k in a:
        assert torch.equal(a[k], b[k])


def test_bare_state_dict_loads(tmp_path, reference_state):
    path = tmp_path / "bare.pth"
    torch.save(collections.OrderedDict(reference_state), path)
    assert hydranet.load_model(path).config.num_classes == 6


def test_three_task_and_custom_class_checkpoints_are_inferred(tmp_path):
    for name, classes in [("nyud40_three", 40), ("nyud_kitti46", 46)]:
        path = tmp_path / f"{name}.ckpt"
        torch.save({"state_dict": hydranet.create_model(name).state_dict()}, path)
        model = hydranet.load_model(path)
        assert model.config.num_classes == classes and model.config.name == name
    assert hydranet.load_model(tmp_path / "nyud40_three.ckpt").tasks == ("segmentation", "depth", "normals")


def test_refuses_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match=r"notes\.ckpt: not a PyTorch checkpoint"):
        hydranet.load_model(path)


def test_refuses_truncated_file(tmp_path, parity_ckpt):
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(parity_ckpt.read_bytes()[:500_000])
    with pytest.raises(CheckpointError, match=r"truncated\.ckpt: truncated or corrupt checkpoint"):
        hydranet.load_model(path)


def test_refuses_pickle_that_needs_code(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "extra": NotATensor()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.ckpt: refused, the file needs code to unpickle") as info:
        hydranet.load_model(path)
    # Never PyTorch's advice to re-run with weights_only=False (which would run the file's code).
    assert "weights_only" not in str(info.value) and "NotATensor" in str(info.value)


def test_refuses_missing_and_unexpected_keys(tmp_path, reference_state):
    missing = dict(reference_state)
    del missing["crp2.0.3_outvar_dimred.weight"]
    path = tmp_path / "missing.ckpt"
    torch.save({"state_dict": missing}, path)
    with pytest.raises(CheckpointError, match=r"missing\.ckpt: 1 missing key\(s\) \(e\.g\. crp2\.0\.3_outvar_dimred\.weight\)"):
        hydranet.load_model(path)

    extra = dict(reference_state, **{"aux.weight": torch.zeros(3)})
    path = tmp_path / "extra.ckpt"
    torch.save({"state_dict": extra}, path)
    with pytest.raises(CheckpointError, match=r"extra\.ckpt: 1 unexpected key\(s\) \(e\.g\. aux\.weight\)"):
        hydranet.load_model(path)


def test_refuses_state_dict_of_another_network(tmp_path):
    path = tmp_path / "resnet.ckpt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(CheckpointError, match=r"resnet\.ckpt: missing key 'segm\.weight'"):
        hydranet.load_model(path)


def test_refuses_wrong_shape(tmp_path, reference_state):
    bad = dict(reference_state)
    bad["conv8.weight"] = torch.zeros(256, 321, 1, 1)
    path = tmp_path / "shape.ckpt"
    torch.save({"state_dict": bad}, path)
    with pytest.raises(CheckpointError, match=r"shape\.ckpt: tensor 'conv8\.weight' has shape \(256, 321, 1, 1\)"):
        hydranet.load_model(path)


def test_refuses_class_count_mismatch(parity_ckpt, tmp_path):
    with pytest.raises(CheckpointError, match=re.escape(f"{parity_ckpt}: the checkpoint has 6 classes but 40 were asked for")):
        hydranet.load_model(parity_ckpt, num_classes=40)
    own = hydranet.save_weights(hydranet.create_model("kitti6"), tmp_path / "k.safetensors")
    with pytest.raises(CheckpointError, match=r"k\.safetensors: the weights have 6 classes but 11 were asked for"):
        hydranet.load_model(own, num_classes=11)


def test_missing_file_and_unknown_names():
    with pytest.raises(CheckpointError, match=r"nope/missing\.ckpt: no such file"):
        hydranet.load_model("nope/missing.ckpt")
    with pytest.raises(WeightsNotFoundError, match=r"kitti6: released weights not in the cache .* run `hydranet weights download kitti6`"):
        hydranet.load_model("kitti6")
    with pytest.raises(WeightsNotFoundError, match=r"kitty6: unknown weights name"):
        hydranet.load_model("kitty6")


def test_safetensors_round_trip_is_exact(tmp_path, parity_ckpt):
    model = hydranet.load_model(parity_ckpt)
    path = hydranet.save_weights(model, tmp_path / "kitti6.safetensors", metadata={"note": "round trip"})
    again = hydranet.load_model(path)
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert again.config == model.config
    meta = read_metadata(path)
    assert meta["format"] == "hydranet" and "round trip" in meta["extra"]
    a, b = _outputs(model), _outputs(again)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not list(tmp_path.glob(".*.tmp")), "temporary file left behind"


def test_safetensors_refusals(tmp_path):
    good = hydranet.save_weights(hydranet.create_model("kitti6"), tmp_path / "good.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: not a readable safetensors file"):
        hydranet.load_model(cut)

    from safetensors.torch import save_file
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match=r"foreign\.safetensors: safetensors file without a hydranet configuration"):
        hydranet.load_model(foreign)


def test_config_round_trips_palette_and_normalisation(tmp_path):
    model = hydranet.create_model("camvid11")
    path = hydranet.save_weights(model, tmp_path / "c.safetensors")
    cfg = hydranet.load_model(path).config
    assert cfg.palette[3] == [128, 64, 128] and cfg.class_names[3] == "road"
    assert np.allclose(cfg.mean, (0.485, 0.456, 0.406)) and cfg.label_set == "camvid11"


def test_weights_pack_halves_the_file_keeps_metadata_and_outputs(tmp_path, parity_ckpt):
    import json
    import subprocess
    import sys

    model = hydranet.load_model(parity_ckpt)
    src = hydranet.save_weights(model, tmp_path / "trained.safetensors", metadata={"command": "hydranet train x"})
    out = tmp_path / "packed.safetensors"
    run = subprocess.run([sys.executable, "-m", "hydranet", "weights", "pack", str(src), str(out),
                          "--name", "shipped"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size < 0.55 * src.stat().st_size
    packed = hydranet.load_model(out)
    assert packed.config.name == "shipped" and packed.config.num_classes == model.config.num_classes
    assert all(v.dtype == torch.float32 for v in packed.state_dict().values() if v.is_floating_point())
    extra = json.loads(read_metadata(out)["extra"])
    assert extra["command"] == "hydranet train x" and extra["packed_from"] == "trained.safetensors"
    a, b = _outputs(model), _outputs(packed)
    assert (a["depth"] - b["depth"]).abs().max() < 0.05 * a["depth"].abs().max()
    bad = subprocess.run([sys.executable, "-m", "hydranet", "weights", "pack",
                          str(tmp_path / "nope.safetensors"), str(out)], capture_output=True, text=True)
    assert bad.returncode != 0 and "nope.safetensors" in bad.stderr and "Traceback" not in bad.stderr


def test_weights_average_is_the_weighted_mean_and_refuses_other_networks(tmp_path, parity_ckpt):
    import subprocess
    import sys

    torch.manual_seed(0)
    a = hydranet.load_model(parity_ckpt)
    b = hydranet.load_model(parity_ckpt)
    with torch.no_grad():
        for v in b.state_dict().values():
            if v.is_floating_point():
                v.add_(torch.randn_like(v))
    pa = hydranet.save_weights(a, tmp_path / "a.safetensors", metadata={"command": "train a"})
    pb = hydranet.save_weights(b, tmp_path / "b.safetensors", metadata={"command": "train b"})
    out = tmp_path / "soup.safetensors"
    run = subprocess.run([sys.executable, "-m", "hydranet", "weights", "average", str(pa), str(pb), str(out),
                          "--mix", "3", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    soup = hydranet.load_model(out).state_dict()
    for key, va in a.state_dict().items():
        vb = b.state_dict()[key]
        expected = 0.75 * va + 0.25 * vb if va.is_floating_point() else va
        assert torch.allclose(soup[key], expected, atol=1e-6), key
    extra = __import__("json").loads(read_metadata(out)["extra"])
    assert extra["averaged_from"] == [str(pa), str(pb)] and extra["mix"] == [0.75, 0.25]
    assert [s["command"] for s in extra["sources"]] == ["train a", "train b"]

    other = hydranet.save_weights(hydranet.create_model("camvid11"), tmp_path / "other.safetensors")
    bad = subprocess.run([sys.executable, "-m", "hydranet", "weights", "average", str(pa), str(other), str(out)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "other.safetensors: a different network" in bad.stderr
    assert hydranet.load_model(out).config.num_classes == a.config.num_classes, "the earlier output was lost"
    bad = subprocess.run([sys.executable, "-m", "hydranet", "weights", "average", str(pa), str(pb), str(out),
                          "--mix", "1"], capture_output=True, text=True)
    assert bad.returncode != 0 and "needs 2 non-negative shares" in bad.stderr


def _rewrite(path, out, config=None, tensors=None):
    """A copy of hydranet weights with its configuration JSON or tensors replaced."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
        state = {k: f.get_tensor(k) for k in f.keys()}
    if config is not None:
        meta["config"] = config if isinstance(config, str) else json.dumps(config)
    state.update(tensors or {})
    save_file(state, str(out), metadata=meta)
    return out


@pytest.mark.parametrize("change, message", [
    ({"config": "[1, 2]"}, "invalid model configuration in metadata"),
    ({"config_key": ("palette", [[1, 2]] * 6)}, "palette must be a list of [r, g, b] colours"),
    ({"config_key": ("num_classes", 0)}, "num_classes must be positive"),
    ({"config_key": ("std", [0.0, 0.2, 0.2])}, "std must be positive"),
    ({"config_key": ("depth_range", [80.0, 0.0])}, "depth_range must be [low, high]"),
    ({"tensor": ("segm.weight", "nan")}, "tensor segm.weight holds NaN or infinite values"),
    ({"tensor": ("segm.weight", "int")}, "tensor segm.weight is torch.int64, not floating point"),
])
def test_broken_weights_are_refused_with_one_line(tmp_path, change, message, capsys):
    from hydranet.cli.main import main

    good = hydranet.save_weights(hydranet.create_model("kitti6"), tmp_path / "good.safetensors")
    meta = json.loads(hydranet.checkpoints.read_metadata(good)["config"])
    config, tensors = None, None
    if "config" in change:
        config = change["config"]
    if "config_key" in change:
        key, value = change["config_key"]
        config = {**meta, key: value}
    if "tensor" in change:
        key, kind = change["tensor"]
        t = hydranet.create_model("kitti6").state_dict()[key]
        tensors = {key: torch.full_like(t, float("nan")) if kind == "nan" else t.long()}
    bad = _rewrite(good, tmp_path / "bad.safetensors", config, tensors)
    with pytest.raises(hydranet.CheckpointError) as info:
        hydranet.load_model(bad)
    assert message in str(info.value) and "\n" not in str(info.value)
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(image)
    assert main(["predict", str(image), "--weights", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
