"""The bundled model's published figures, re-measured on the real data in ../shared.

The README and the model card state these numbers; if a change to the pipeline or the weights
moves them, these tests say so. Bounds: the figure measured when the weights were committed,
give or take what another CPU's floating point can change (a few hundredths of a point).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED, require_shared

import hydranet
from hydranet.data.datasets import build_dataset
from hydranet.evaluation.evaluate import evaluate, predictor_predict_fn
from hydranet.evaluation.real_depth import evaluate_depth_images


@pytest.fixture(scope="module")
def predictor() -> hydranet.Predictor:
    return hydranet.Predictor(backend="torch")


def test_camvid_val_miou_is_the_published_one(camvid_dir, predictor):
    dataset = build_dataset({"type": "camvid", "root": str(camvid_dir), "split": "val"}, target_label_set="camvid11")
    result = evaluate(predictor_predict_fn(predictor), dataset, 11, progress=False)
    # README / model card: 65.7 % (65.70 measured with the committed file).
    assert result["images"] == 101
    assert result["segmentation"]["miou"] == pytest.approx(0.6570, abs=0.005)


def test_real_frame_depth_is_the_published_one(predictor):
    root = require_shared(SHARED / "data" / "realdepth_dev")
    dataset = build_dataset({"type": "depth_folder", "root": str(root)})
    result = evaluate_depth_images(lambda im, k: predictor.predict(im, intrinsics=k).depth, dataset,
                                   progress=False)
    mean = result["overall"]["image_mean"]
    # Model card: metric 0.253, median-scaled 0.236, constant 0.539, row-only 0.356 (mean of 6 frames).
    assert mean["model"]["abs_rel"] == pytest.approx(0.253, abs=0.005)
    assert mean["model_median"]["abs_rel"] == pytest.approx(0.236, abs=0.005)
    assert mean["constant"]["abs_rel"] == pytest.approx(0.539, abs=0.001)
    assert mean["row"]["abs_rel"] == pytest.approx(0.356, abs=0.001)
    wins = [e["errors"]["model_median"]["abs_rel"] < e["errors"]["constant"]["abs_rel"] for e in result["images"]]
    assert all(wins) and len(wins) == 6
    scales = np.array([e["scale"] for e in result["images"]])
    assert np.all((scales > 0.8) & (scales < 1.45))  # metric within the stated 0.93-1.33
