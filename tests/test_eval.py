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


def test_eval_cli_table_json_and_corruptions(tiny, tmp_path, capsys, one_thread):
    weights, data = tiny
    out = tmp_path / "r.json"
    assert main(["eval", "--weights", str(weights), "--dataset", "folder", "--root", str(data),
                 "--corrupt", "hydranet-fog,hydranet-night", "--severity", "1..2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "condition" in text and "d_miou" in text and "hydranet-night" in text
    rows = json.loads(out.read_text())["rows"]
    assert [(r["condition"], r["severity"]) for r in rows] == [
        ("clean", None), ("hydranet-fog", 1), ("hydranet-fog", 2), ("hydranet-night", 1), ("hydranet-night", 2)]
    # the clean row equals a direct evaluation through the model
    model = hydranet.load_model(weights)
    direct = evaluate(model_predict_fn(model), FolderDataset(data), 3, max_depth=80.0, progress=False)
    assert rows[0]["miou"] == pytest.approx(direct["segmentation"]["miou"], abs=1e-6)
    assert rows[0]["abs_rel"] == pytest.approx(direct["depth"]["abs_rel"], rel=1e-4)
    assert rows[1]["d_miou"] == pytest.approx(rows[1]["miou"] - rows[0]["miou"])
    assert rows[0]["result"]["segmentation"]["pixels"] == 2 * 24 * 32  # two labelled images


def test_corruption_arguments():
    assert parse_severities("1..3") == [1, 2, 3] and parse_severities("2,5") == [2, 5]
    assert parse_severities("1-5") == parse_severities(None) == [1, 2, 3, 4, 5]
    assert parse_kinds("hydranet")[0] == "hydranet-rain" and "snow" in parse_kinds("all")
    with pytest.raises(InputError, match="1..5"):
        parse_severities("0..6")
    with pytest.raises(InputError, match="unknown corruption"):
        parse_kinds("sleet")


def test_eval_corrupt_standard_names_reference_mce_json_and_heatmaps(tiny, tmp_path, capsys, one_thread):
    """ImageNet-C names and hydranet's own together, a reference, the field's summaries: the same
    weights as reference give CE = 1 exactly; a second model's rows equal a direct evaluation."""
    weights, data = tiny
    torch.manual_seed(1)
    other = hydranet.save_weights(hydranet.HydraNet(hydranet.ModelConfig(num_classes=3, decoder_channels=16)).eval(),
                                  tmp_path / "other.safetensors")
    out = tmp_path / "grid.json"
    assert main(["eval", "--weights", str(weights), "--dataset", "folder", "--root", str(data),
                 "--corrupt", "gaussian_noise,contrast,hydranet-rain", "--severity", "1-2", "--batch-size", "7",
                 "--reference", str(weights), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mRR" in text and "mCE" in text and "hydranet depth-aware weather" in text
    payload = json.loads(out.read_text())
    assert [(r["condition"], r["severity"]) for r in payload["rows"]][:3] == [
        ("clean", None), ("gaussian_noise", 1), ("gaussian_noise", 2)]
    seg = payload["summary"]["segmentation"]["sets"]
    assert seg["requested"]["corruptions"] == ["gaussian_noise", "contrast"]
    assert seg["requested"]["mce"] == pytest.approx(1.0) and seg["hydranet"]["mce"] == pytest.approx(1.0)
    assert payload["summary"]["depth"]["sets"]["requested"]["ce"]["contrast"] == pytest.approx(1.0)
    assert payload["settings"]["severities"] == [1, 2] and payload["settings"]["imagecorruptions"]
    for task in ("segmentation", "depth"):
        with Image.open(tmp_path / f"grid_{task}.png") as im:
            assert im.size[0] > 100 and im.size[1] > 100
    # The reference's rows are the reference evaluated on the same corrupted images.
    assert main(["eval", "--weights", str(weights), "--dataset", "folder", "--root", str(data),
                 "--corrupt", "contrast", "--severity", "2", "--reference", str(other), "--json", str(out)]) == 0
    ref_row = json.loads(out.read_text())["reference_rows"][1]
    direct = evaluate(model_predict_fn(hydranet.load_model(other)), FolderDataset(data), 3, max_depth=80.0,
                      corruption="contrast", severity=2, progress=False)
    assert ref_row["miou"] == pytest.approx(direct["segmentation"]["miou"], abs=1e-6)
    assert ref_row["abs_rel"] == pytest.approx(direct["depth"]["abs_rel"], rel=1e-4)


def test_eval_reference_must_predict_the_same_classes(tiny, tmp_path, capsys, one_thread):
    weights, data = tiny
    five = hydranet.save_weights(hydranet.HydraNet(hydranet.ModelConfig(num_classes=5, decoder_channels=16)).eval(),
                                 tmp_path / "five.safetensors")
    assert main(["eval", "--weights", str(weights), "--dataset", "folder", "--root", str(data),
                 "--corrupt", "fog", "--severity", "1", "--reference", str(five)]) == 2
    assert "same classes" in capsys.readouterr().err


def test_eval_depth_folder_under_corruptions(tmp_path, capsys, one_thread):
    torch.manual_seed(0)
    weights = hydranet.save_weights(hydranet.HydraNet(hydranet.ModelConfig(num_classes=3, decoder_channels=16)).eval(),
                                    tmp_path / "tiny.safetensors")
    root = tmp_path / "frames"
    for sub in ("images", "depth"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(rng.integers(256, 256 * 40, (32, 40)).astype(np.uint16)).save(root / "depth" / f"{i}.png")
    out = tmp_path / "d.json"
    assert main(["eval", "--weights", str(weights), "--dataset", "depth_folder", "--root", str(root),
                 "--corrupt", "dark,color_quant", "--severity", "3", "--median-scaling", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert "segmentation" not in summary and summary["depth"]["sets"]["requested"]["corruptions"] == [
        "dark", "color_quant"]
    assert (tmp_path / "d_depth.png").is_file() and not (tmp_path / "d_segmentation.png").exists()


def test_eval_depth_folder_says_which_images_had_no_camera(tmp_path, capsys, one_thread):
    # Camera-aware weights make depth metric for each image's intrinsics; an image without
    # intrinsics/NAME.txt is scored with the assumed field of view, and the run says so.
    root = tmp_path / "frames"
    for sub in ("images", "depth"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(root / "images" / "only.png")
    Image.fromarray(rng.integers(256, 256 * 40, (32, 40)).astype(np.uint16)).save(root / "depth" / "only.png")
    assert main(["eval", "--dataset", "depth_folder", "--root", str(root), "--backend", "torch"]) == 0
    out = capsys.readouterr().out
    assert "(1 of 1 image(s) without intrinsics/NAME.txt: a 60 degree horizontal field of view assumed)" in out
    assert "row-only map: not computed, it needs at least two images" in out
    # A stated field of view is used for them instead, and said.
    assert main(["eval", "--dataset", "depth_folder", "--root", str(root), "--backend", "torch", "--hfov", "90"]) == 0
    stated = capsys.readouterr().out
    assert "a 90 degree horizontal field of view stated (--hfov))" in stated
    metric = [line.split()[3] for line in (out, stated) for line in line.splitlines() if line.startswith("only ")]
    assert len(metric) == 2 and metric[0] != metric[1]  # the camera changed the metric depth
    assert main(["eval", "--dataset", "depth_folder", "--root", str(root), "--hfov", "0"]) == 2
    assert "--hfov 0: give 1 to 170 degrees" in capsys.readouterr().err


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
    assert main(["eval", "--weights", str(weights), "--dataset", "folder", "--root", str(data)]) == 0
    captured = capsys.readouterr()
    assert "[3 images]" in captured.out and "1 unreadable image(s) skipped" in captured.out
    # The command says it in one line, as it says errors.
    (warning,) = [line for line in captured.err.splitlines() if "1.png" in line]
    assert warning.startswith("hydranet: warning: ") and f"{data / 'images' / '1.png'}: cannot read image" in warning
    # Training validation on the same folder: the run goes on and validates on the other three.
    from hydranet.training.trainer import Trainer
    from test_train import tiny_config

    cfg = tiny_config(tmp_path / "t", steps=2)
    cfg["data"]["val"] = [{"type": "folder", "root": str(data)}]
    cfg["data"]["on_bad_label"] = "missing"
    with pytest.warns(UserWarning, match="1.png"):
        summary = Trainer(cfg, log=lambda m: None).fit()
    assert summary["step"] == 2 and summary["last_validation"] is not None


# -- what --protocol, --median-scaling, --size and --backend change, by hand -------------

EVAL_H, EVAL_W = 24, 32


@pytest.fixture()
def constant_depth(tmp_path):
    """A model whose depth is 10 m everywhere, and two images whose true depth is in quadrants:
    rows 0-11 are 2 m (left) and 4 m (right), rows 12-23 are 8 m and 16 m; labels everywhere."""
    torch.manual_seed(0)
    model = hydranet.HydraNet(hydranet.ModelConfig(num_classes=3, decoder_channels=16)).eval()
    with torch.no_grad():
        for module in model.modules():  # random statistics: labels that vary across the image
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
        model.depth.weight.zero_()
        model.depth.bias.fill_(10.0)
    weights = hydranet.save_weights(model, tmp_path / "ten.safetensors")
    root = tmp_path / "quadrants"
    for sub in ("images", "labels", "depth"):
        (root / sub).mkdir(parents=True)
    depth = np.empty((EVAL_H, EVAL_W), np.float64)
    depth[:12, :16], depth[:12, 16:], depth[12:, :16], depth[12:, 16:] = 2, 4, 8, 16
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (EVAL_H, EVAL_W, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(rng.integers(0, 3, (EVAL_H, EVAL_W), dtype=np.uint8)).save(root / "labels" / f"{i}.png")
        Image.fromarray((depth * 256).astype(np.uint16)).save(root / "depth" / f"{i}.png")
    return weights, root


def _eval_json(tmp_path, weights, root, *extra) -> dict:
    out = tmp_path / f"r{len(list(tmp_path.glob('r*.json')))}.json"
    assert main(["eval", "--weights", str(weights), "--dataset", "folder", "--root", str(root),
                 "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())["rows"][0]["result"]


@pytest.mark.usefixtures("one_thread")
def test_eval_protocol_and_median_scaling_give_the_hand_computed_abs_rel(constant_depth, tmp_path):
    weights, root = constant_depth
    plain = _eval_json(tmp_path, weights, root)["depth"]
    # 10 m against 2, 4, 8, 16 m on equal areas: (8/2 + 6/4 + 2/8 + 6/16) / 4
    assert plain["abs_rel"] == pytest.approx((4 + 1.5 + 0.25 + 0.375) / 4, rel=1e-6)
    assert plain["protocol"] == "none" and plain["images"] == 2
    # --median-scaling: 10 m times median(truth) / median(prediction) = 6 / 10 -> 6 m everywhere
    scaled = _eval_json(tmp_path, weights, root, "--median-scaling")["depth"]
    assert scaled["abs_rel"] == pytest.approx((4 / 2 + 2 / 4 + 2 / 8 + 10 / 16) / 4, rel=1e-6)
    assert scaled["median_scale"] == pytest.approx(0.6, rel=1e-6)
    # --protocol kitti_garg: rows int(0.408 * 24) = 9 to int(0.992 * 24) = 23, columns 1 to 30:
    # 3 x 15 pixels of 2 m, 3 x 14 of 4 m, 11 x 15 of 8 m, 11 x 14 of 16 m, per-pixel mean
    garg = _eval_json(tmp_path, weights, root, "--protocol", "kitti_garg")["depth"]
    assert garg["protocol"] == "kitti_garg"
    assert garg["abs_rel"] == pytest.approx((45 * 4 + 42 * 1.5 + 165 * 0.25 + 154 * 0.375) / 406, rel=1e-6)
    # --protocol nyud_10: truth below 10 m only (the 16 m quadrant drops out)
    nyud = _eval_json(tmp_path, weights, root, "--protocol", "nyud_10")["depth"]
    assert nyud["abs_rel"] == pytest.approx((4 + 1.5 + 0.25) / 3, rel=1e-6)


@pytest.mark.usefixtures("one_thread")
def test_eval_size_is_the_network_input_size(constant_depth, tmp_path, input_sizes):
    weights, root = constant_depth
    shapes = input_sizes
    native = _eval_json(tmp_path, weights, root)
    assert set(shapes) == {(EVAL_H, EVAL_W)}
    shapes.clear()
    sized = _eval_json(tmp_path, weights, root, "--size", "16x24")
    assert set(shapes) == {(16, 24)}
    # The labels are scored at the dataset's resolution either way, and they are those of a
    # Predictor at that size.
    assert sized["segmentation"]["pixels"] == native["segmentation"]["pixels"] == 2 * EVAL_H * EVAL_W
    predictor = hydranet.Predictor(weights, size=(16, 24), backend="torch")
    dataset = FolderDataset(root)
    confusion = np.zeros((3, 3), int)
    for i in range(2):
        labels = predictor.predict(dataset[i]["image"]).labels
        np.add.at(confusion, (dataset[i]["segmentation"].ravel(), labels.ravel()), 1)
    iou = np.diag(confusion) / (confusion.sum(0) + confusion.sum(1) - np.diag(confusion))
    assert sized["segmentation"]["miou"] == pytest.approx(np.nanmean(iou), abs=1e-12)
    assert sized["segmentation"]["miou"] != native["segmentation"]["miou"]


@pytest.mark.usefixtures("one_thread")
def test_eval_backend_runs_the_engine_and_agrees_with_torch(constant_depth, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from hydranet.inference.backends import onnxruntime_backend

    weights, root = constant_depth
    calls = []
    run = onnxruntime_backend.OnnxRuntimeBackend.__call__
    monkeypatch.setattr(onnxruntime_backend.OnnxRuntimeBackend, "__call__",
                        lambda self, batch: calls.append(batch.shape) or run(self, batch))
    torch_result = _eval_json(tmp_path, weights, root)
    assert calls == []
    ort_result = _eval_json(tmp_path, weights, root, "--backend", "onnxruntime")
    assert calls == [(1, 3, EVAL_H, EVAL_W)] * 2  # every image went through ONNX Runtime
    assert ort_result["depth"]["abs_rel"] == pytest.approx(torch_result["depth"]["abs_rel"], rel=1e-5)
    assert ort_result["segmentation"]["pixel_accuracy"] == pytest.approx(
        torch_result["segmentation"]["pixel_accuracy"], abs=2 / (2 * EVAL_H * EVAL_W))
