"""``hydranet demo``: synthetic drive scored against ground truth, and a user's video."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("pybullet")

from hydranet import save_weights  # noqa: E402
from hydranet.cli.main import main  # noqa: E402
from hydranet.data.synthetic import DRIVE_CONDITIONS, render_drive  # noqa: E402
from hydranet.evaluation.metrics import DepthMetrics, SegmentationMetrics  # noqa: E402
from hydranet.inference.media import VideoReader, VideoWriter, read_image  # noqa: E402
from hydranet.inference.predictor import Predictor  # noqa: E402
from hydranet import create_model  # noqa: E402
from hydranet.model import hydranet  # noqa: E402

SIZE = (64, 96)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("camvid11").eval()
    # Break the symmetry of a fresh network so the predictions vary across pixels.
    with torch.no_grad():
        model.segm.bias.copy_(torch.linspace(-1, 1, 11))
    path = tmp_path_factory.mktemp("w") / "random.safetensors"
    save_weights(model, path)
    return path


@pytest.fixture(scope="module")
def drive_run(random_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    argv = ["demo", "--weights", str(random_weights), "--frames", "2", "--size", f"{SIZE[0]}x{SIZE[1]}",
            "--seed", "3", "--out", str(out)]
    assert main(argv) == 0
    return out


def test_drive_writes_panels_videos_and_metrics(drive_run, capsys):
    out = drive_run
    panels = sorted((out / "panels").glob("*.png"))
    assert [p.name for p in panels] == sorted(f"{c}_{i:03d}.png" for c in DRIVE_CONDITIONS for i in range(2))
    first = read_image(panels[0])
    # Five tiles side by side: image | labels truth | prediction | depth truth | prediction.
    assert first.shape[1] > 5 * SIZE[1]
    with VideoReader(out / "demo.mp4") as reader:
        frames = list(reader)
    assert len(frames) == 8 and reader.error is None
    with VideoReader(out / "demo.gif") as reader:
        assert len(list(reader)) == 8
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["conditions"]) == list(DRIVE_CONDITIONS)


def test_drive_scores_are_those_of_the_predictions(monkeypatch):
    """score_drive on two constructed 2x3 frames with hand-computed confusion and depth errors."""
    import types

    import hydranet.data.synthetic as synthetic
    from hydranet.evaluation.drive import score_drive

    def frame(index, seg, depth):
        return {"image": np.full((2, 3, 3), index, np.uint8), "segmentation": np.array(seg, np.uint8),
                "depth": np.array(depth, np.float32)}

    samples = [frame(0, [[0, 0, 1], [1, 2, 255]], [[2, 4, 0], [10, 100, 5]]),
               frame(1, [[2, 2, 2], [2, 2, 2]], [[8, 8, 8], [8, 8, 8]])]
    predictions = [(np.array([[0, 1, 1], [1, 2, 0]], np.uint8), np.array([[3, 4, 7], [5, 50, 5]], np.float32)),
                   (np.array([[2, 2, 2], [2, 2, 0]], np.uint8), np.array([[10, 10, 10], [8, 8, 8]], np.float32))]
    rendered = []

    def fake_render_drive(seed, conditions, frames, size, renderer):
        rendered.append((seed, tuple(conditions), frames, size))
        return {conditions[0]: samples[:frames]}

    class Predictor:
        config = types.SimpleNamespace(num_classes=3)

        def predict(self, image):
            labels, depth = predictions[int(image[0, 0, 0])]
            return types.SimpleNamespace(labels=labels, depth=depth)

    monkeypatch.setattr(synthetic, "render_drive", fake_render_drive)
    result = score_drive({"m": Predictor()}, 5, 2, (2, 3), conditions=("clear",), renderer=object(),
                         progress=False)["m"]["clear"]
    assert rendered == [(5, ("clear",), 2, (2, 3))]
    # Confusion over both frames (rows truth, columns prediction; the 255 pixel ignored):
    #   truth 0: 2 pixels, predicted 0 once (frame 0) -> predicted 0 twice in all (frame 1's
    #   last pixel), IoU0 = 1 / (2 + 2 - 1) = 1/3
    #   truth 1: 2 pixels, both predicted 1, predicted 1 three times: IoU1 = 2 / (2 + 3 - 2) = 2/3
    #   truth 2: 7 pixels, 6 predicted 2, predicted 2 six times: IoU2 = 6 / (7 + 6 - 6) = 6/7
    assert result["iou"] == pytest.approx([1 / 3, 2 / 3, 6 / 7], abs=1e-12)
    assert result["miou"] == pytest.approx((1 / 3 + 2 / 3 + 6 / 7) / 3, abs=1e-12)  # 13/21
    assert result["pixel_accuracy"] == pytest.approx(9 / 11, abs=1e-12)
    # Depth, per image then averaged (truth 0 = none, 100 m beyond the 80 m range):
    #   frame 0: |3-2|/2, 0, |5-10|/10, 0 -> 0.25; frame 1: three pixels 0.25, three 0 -> 0.125
    assert result["abs_rel"] == pytest.approx((0.25 + 0.125) / 2, abs=1e-12)
    #   ratios 1.5, 1, 2, 1 -> 2 of 4 below 1.25; frame 1: 1.25 is not below 1.25 -> 3 of 6
    assert result["delta1"] == pytest.approx(0.5, abs=1e-12)
    assert result["rmse"] == pytest.approx((np.sqrt(26 / 4) + np.sqrt(12 / 6)) / 2, abs=1e-12)
    assert result["frames"] == 2


def test_video_input_runs_without_ground_truth(random_weights, tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(video, fps=5) as writer:
        for _ in range(4):
            writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert main(["demo", "--input", str(video), "--weights", str(random_weights), "--out", str(out)]) == 0
    assert len(list((out / "panels").glob("frame_*.png"))) == 4
    with VideoReader(out / "demo.mp4") as reader:
        assert len(list(reader)) == 4
    info = json.loads((out / "metrics.json").read_text())
    assert info["frames"] == 4 and info["error"] is None
    assert "4 frames" in capsys.readouterr().out


def test_missing_video_is_a_one_line_error(random_weights, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hydranet", "demo", "--input", str(tmp_path / "none.mp4"),
                           "--weights", str(random_weights), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"hydranet: error: {tmp_path / 'none.mp4'}: no such video file; check the path"


def test_drive_refuses_weights_without_camvid_classes(tmp_path, capsys):
    path = tmp_path / "six.safetensors"
    save_weights(hydranet(6), path)
    assert main(["demo", "--weights", str(path), "--out", str(tmp_path / "o"), "--frames", "1"]) == 2
    assert "the demo scores CamVid's 11 classes, these weights have 6" in capsys.readouterr().err


def test_bundled_default_model_is_small_and_better_than_chance():
    from hydranet.checkpoints import bundled_path, load_model

    path = bundled_path("default")
    if path is None:
        pytest.skip("this installation has no bundled default weights")
    assert path.stat().st_size <= 10 * 1024 * 1024
    model = load_model("default")
    assert model.config.encoder == "efficientnet_lite0" and model.config.class_names[3] == "road"
    frame = render_drive(seed=2, conditions=("clear",), frames=1)["clear"][0]
    pred = Predictor(model, backend="torch").predict(frame["image"])
    seg = SegmentationMetrics(11)
    seg.update(pred.labels, frame["segmentation"])
    depth = DepthMetrics("none", min_depth=1e-3, max_depth=80.0)
    depth.update(pred.depth, frame["depth"])
    # Guessing one class scores at most 4.3 % mIoU on this frame, a constant 20 m depth 1.86 abs rel
    # (measured); the shipped default (stage 10) scores 57.6 % and 0.130: the bounds leave a few
    # points for other CPUs' rounding, not for a worse model.
    assert seg.compute()["miou"] > 0.55
    assert depth.compute()["abs_rel"] < 0.15


def _numpy_scores(pairs: list, num_classes: int) -> dict:
    """mIoU over pooled pixels, abs rel per image then averaged, with numpy alone."""
    pred = np.concatenate([p.ravel() for p, _, _, _ in pairs]).astype(int)
    truth = np.concatenate([t.ravel() for _, t, _, _ in pairs]).astype(int)
    pred, truth = pred[truth != 255], truth[truth != 255]
    ious = []
    for c in range(num_classes):
        union = np.sum((pred == c) | (truth == c))
        if union:
            ious.append(np.sum((pred == c) & (truth == c)) / union)
    rels = []
    for _, _, d_pred, d_true in pairs:
        valid = (d_true > 1e-3) & (d_true < 80.0)
        if valid.any():
            p = np.clip(d_pred[valid].astype(np.float64), 1e-3, 80.0)
            rels.append(np.mean(np.abs(p - d_true[valid]) / d_true[valid]))
    return {"miou": float(np.mean(ious)), "abs_rel": float(np.mean(rels))}


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory):
    """A second CamVid-11 model: other random weights, another class bias."""
    torch.manual_seed(1)
    model = create_model("camvid11").eval()
    with torch.no_grad():
        model.segm.bias.copy_(torch.linspace(1, -1, 11))
        model.depth.bias.fill_(15.0)
    return save_weights(model, tmp_path_factory.mktemp("w2") / "other.safetensors")


@pytest.mark.usefixtures("one_thread")
def test_score_drive_gives_every_model_the_same_frames(drive_run, random_weights, other_weights):
    from hydranet.evaluation.drive import score_drive

    predictors = {"a": Predictor(str(random_weights), backend="torch"), "b": Predictor(str(other_weights), backend="torch")}
    seen: dict[str, list] = {"a": [], "b": []}

    def on_frame(name, condition, i, sample, pred):
        seen[name].append((condition, i, sample, pred))

    conditions = ("clear", "night")
    results = score_drive(predictors, 3, 2, SIZE, conditions=conditions, progress=False, on_frame=on_frame)
    assert [(c, i) for c, i, _, _ in seen["a"]] == [(c, i) for c in conditions for i in range(2)]
    assert [(c, i) for c, i, _, _ in seen["b"]] == [(c, i) for c, i, _, _ in seen["a"]]
    demo = json.loads((drive_run / "metrics.json").read_text())["conditions"]
    for (c, i, sample_a, _), (_, _, sample_b, _) in zip(seen["a"], seen["b"]):
        for key in ("image", "segmentation", "depth"):  # the very same frames for both models
            np.testing.assert_array_equal(sample_a[key], sample_b[key])
    for name, predictor in predictors.items():
        for condition in conditions:
            frames = [(sample, pred) for c, _, sample, pred in seen[name] if c == condition]
            # The prediction handed over is this model's own, computed again here ...
            pairs = []
            for sample, pred in frames:
                own = predictor.predict(sample["image"])
                np.testing.assert_array_equal(pred.labels, own.labels)
                np.testing.assert_array_equal(pred.depth, own.depth)
                pairs.append((own.labels, sample["segmentation"], own.depth, sample["depth"]))
            # ... and the scores are those of these predictions, counted with numpy alone.
            expected = _numpy_scores(pairs, 11)
            assert results[name][condition]["miou"] == pytest.approx(expected["miou"], abs=1e-12)
            assert results[name][condition]["abs_rel"] == pytest.approx(expected["abs_rel"], rel=1e-9)
            if name == "a":  # the demo scored the same model on the same drive
                assert demo[condition]["miou"] == pytest.approx(expected["miou"], abs=1e-12)
                assert demo[condition]["abs_rel"] == pytest.approx(expected["abs_rel"], rel=1e-9)
    # Two different models, two different scores: the results are not one model's twice.
    assert results["a"]["clear"]["abs_rel"] != pytest.approx(results["b"]["clear"]["abs_rel"], rel=1e-3)


def test_condition_gaps_are_relative_changes_against_clear(drive_run):
    from hydranet.evaluation.drive import condition_gaps

    gaps = condition_gaps({"clear": {"miou": 0.5, "abs_rel": 0.10}, "night": {"miou": 0.45, "abs_rel": 0.112},
                           "rain": {"miou": 0.0, "abs_rel": 0.0}})
    assert gaps["night"]["miou"] == pytest.approx(-10.0) and gaps["night"]["abs_rel"] == pytest.approx(12.0)
    assert gaps["rain"] == {"miou": -100.0, "abs_rel": -100.0}
    assert condition_gaps({"clear": {"miou": 0.0, "abs_rel": 0.1}, "fog": {"miou": 0.2, "abs_rel": 0.1}}) == \
        {"fog": {"miou": None, "abs_rel": 0.0}}
    saved = json.loads((drive_run / "metrics.json").read_text())
    assert set(saved["change_vs_clear_percent"]) == {"rain", "fog", "night"}
