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
from hydranet.model import create_model, hydranet  # noqa: E402

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


def test_drive_scores_are_those_of_the_predictions(drive_run, random_weights):
    metrics = json.loads((drive_run / "metrics.json").read_text())["conditions"]
    predictor = Predictor(str(random_weights))
    drive = render_drive(3, ("clear", "night"), 2, size=SIZE)
    for condition, frames in drive.items():
        seg, depth = SegmentationMetrics(11), DepthMetrics("none", min_depth=1e-3, max_depth=80.0)
        for f in frames:
            pred = predictor.predict(f["image"])
            seg.update(pred.labels, f["segmentation"])
            depth.update(pred.depth, f["depth"])
        assert metrics[condition]["miou"] == pytest.approx(seg.compute()["miou"], abs=1e-9)
        assert metrics[condition]["abs_rel"] == pytest.approx(depth.compute()["abs_rel"], rel=1e-9)
        assert 0.0 <= metrics[condition]["miou"] <= 1.0


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
    pred = Predictor(model).predict(frame["image"])
    seg = SegmentationMetrics(11)
    seg.update(pred.labels, frame["segmentation"])
    depth = DepthMetrics("none", min_depth=1e-3, max_depth=80.0)
    depth.update(pred.depth, frame["depth"])
    # Guessing one class scores at most 4.3 % mIoU on this frame, a constant 20 m depth 1.86 abs rel
    # (measured); the shipped default (stage 10) scores 57.6 % and 0.130: the bounds leave a few
    # points for other CPUs' rounding, not for a worse model.
    assert seg.compute()["miou"] > 0.55
    assert depth.compute()["abs_rel"] < 0.15


def test_score_drive_gives_every_model_the_same_frames(drive_run, random_weights):
    from hydranet.evaluation.drive import score_drive

    metrics = json.loads((drive_run / "metrics.json").read_text())["conditions"]
    seen: dict[str, list[float]] = {"a": [], "b": []}
    results = score_drive({"a": Predictor(str(random_weights)), "b": Predictor(str(random_weights))}, 3, 2, SIZE,
                          conditions=("clear", "night"), progress=False,
                          on_frame=lambda name, c, i, sample, pred: seen[name].append(float(sample["image"].mean())))
    assert seen["a"] == seen["b"] and len(seen["a"]) == 4
    for condition in ("clear", "night"):
        # Classes absent from both truth and prediction have a NaN IoU: compare as text.
        assert json.dumps(results["a"][condition]) == json.dumps(results["b"][condition])
        assert results["a"][condition]["miou"] == pytest.approx(metrics[condition]["miou"], abs=1e-12)
        assert results["a"][condition]["abs_rel"] == pytest.approx(metrics[condition]["abs_rel"], abs=1e-12)


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
