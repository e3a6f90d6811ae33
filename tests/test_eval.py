"""hydranet eval (metrics, JSON, corruption table) and pseudo-label round trip into training data."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import hydranet
from hydranet.cli.main import main
from hydranet.data.datasets import FolderDataset
from hydranet.errors import InputError
from hydranet.evaluation.corruption import parse_kinds, parse_severities
from hydranet.evaluation.evaluate import evaluate, model_predict_fn

from test_train import make_folder_dataset


@pytest.fixture()
def tiny(tmp_path):
    torch.manual_seed(0)
    model = hydranet.HydraNet(hydranet.ModelConfig(num_classes=3, decoder_channels=16))
    weights = hydranet.save_weights(model.eval(), tmp_path / "tiny.safetensors")
    data = make_folder_dataset(tmp_path / "data", n=4, size=(24, 32))
    return weights, data


def test_eval_cli_table_json_and_corruptions(tiny, tmp_path, capsys):
    weights, data = tiny
    out = tmp_path / "r.json"
    assert main(["eval", "--weights", str(weights), "--dataset", "folder", "--root", str(data),
                 "--corrupt", "fog,night", "--severity", "1..2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "condition" in text and "d_miou" in text and "night" in text
    rows = json.loads(out.read_text())["rows"]
    assert [(r["condition"], r["severity"]) for r in rows] == [
        ("clean", None), ("fog", 1), ("fog", 2), ("night", 1), ("night", 2)]
    # the clean row equals a direct evaluation through the model
    model = hydranet.load_model(weights)
    direct = evaluate(model_predict_fn(model), FolderDataset(data), 3, max_depth=80.0, progress=False)
    assert rows[0]["miou"] == pytest.approx(direct["segmentation"]["miou"], abs=1e-6)
    assert rows[0]["abs_rel"] == pytest.approx(direct["depth"]["abs_rel"], rel=1e-4)
    assert rows[1]["d_miou"] == pytest.approx(rows[1]["miou"] - rows[0]["miou"])
    assert rows[0]["result"]["segmentation"]["pixels"] == 2 * 24 * 32  # two labelled images


def test_corruption_arguments():
    assert parse_severities("1..3") == [1, 2, 3] and parse_severities("2,5") == [2, 5]
    assert parse_kinds("all")[0] == "rain"
    with pytest.raises(InputError, match="1..5"):
        parse_severities("0..6")
    with pytest.raises(InputError, match="unknown corruption"):
        parse_kinds("snow")


def test_pseudo_labels_fill_missing_segmentation(tiny, tmp_path, capsys):
    weights, data = tiny
    out = tmp_path / "pseudo"
    assert main(["pseudo-label", "--teacher", str(weights), "--images", str(data / "images"),
                 "--out", str(out)]) == 0
    assert "4 written" in capsys.readouterr().out
    image = np.asarray(Image.open(data / "images" / "1.png").convert("RGB"))
    # Independent of the pipeline: float64 normalisation, PyTorch's bicubic resize, softmax.
    teacher = hydranet.load_model(weights)
    x = (image / 255.0 - np.asarray(teacher.config.mean)) / np.asarray(teacher.config.std)
    with torch.no_grad():
        logits = teacher(torch.from_numpy(x.astype(np.float32).transpose(2, 0, 1)[None]))["segmentation"]
    logits = torch.nn.functional.interpolate(logits, size=image.shape[:2], mode="bicubic", align_corners=False)
    prob, labels = logits.softmax(1)[0].max(0)
    written = np.asarray(Image.open(out / "1.png"))
    assert (written == labels.numpy()).mean() > 0.99  # the two bicubic kernels differ at ties only
    conf_error = np.abs(np.asarray(Image.open(out / "1_conf.png")).astype(float) - prob.numpy() * 255)
    assert np.median(conf_error) <= 0.5 and conf_error.max() <= 3
    ds = FolderDataset(data, pseudo_labels=out)
    assert "pseudo" not in ds[0] and ds[0]["segmentation"][0, 0] == np.asarray(
        Image.open(data / "labels" / "0.png"))[0, 0]  # real labels win
    assert ds[1]["pseudo"] and np.array_equal(ds[1]["segmentation"], written)
    strict = FolderDataset(data, pseudo_labels=out, pseudo_threshold=0.99)
    assert (strict[1]["segmentation"] == 255).mean() > 0.5  # an untrained teacher is rarely sure
    # a second run keeps what is there
    assert main(["pseudo-label", "--teacher", str(weights), "--images", str(data / "images"),
                 "--out", str(out)]) == 0
    assert "4 already present" in capsys.readouterr().out


def test_a_corrupt_image_is_skipped_by_eval_and_by_validation(tmp_path, capsys):
    torch.manual_seed(0)
    model = hydranet.HydraNet(hydranet.ModelConfig(num_classes=3, decoder_channels=16))
    weights = hydranet.save_weights(model.eval(), tmp_path / "tiny.safetensors")
    data = make_folder_dataset(tmp_path / "data", n=4, size=(24, 32))
    (data / "images" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # the 2nd of 4 images
    with pytest.warns(UserWarning, match="1.png: cannot read image"):
        assert main(["eval", "--weights", str(weights), "--dataset", "folder", "--root", str(data)]) == 0
    out = capsys.readouterr().out
    assert "[3 images]" in out and "1 unreadable image(s) skipped" in out
    # Training validation on the same folder: the run goes on and validates on the other three.
    from hydranet.training.trainer import Trainer
    from test_train import tiny_config

    cfg = tiny_config(tmp_path / "t", steps=2)
    cfg["data"]["val"] = [{"type": "folder", "root": str(data)}]
    cfg["data"]["on_bad_label"] = "missing"
    with pytest.warns(UserWarning, match="1.png"):
        summary = Trainer(cfg, log=lambda m: None).fit()
    assert summary["step"] == 2 and summary["last_validation"] is not None
