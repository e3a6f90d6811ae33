"""Metrics against values computed by hand on small arrays."""

import math

import numpy as np
import pytest
import torch

from hydranet.evaluation import DepthMetrics, SegmentationMetrics, get_protocol
from hydranet.evaluation.protocols import PROTOCOLS


def test_segmentation_metrics_by_hand():
    pred = np.array([[0, 0, 1], [1, 2, 2]])
    gt = np.array([[0, 1, 1], [1, 2, 255]])
    m = SegmentationMetrics(4)
    m.update(torch.from_numpy(pred), torch.from_numpy(gt))
    r = m.compute()
    # class 0: tp 1, union 2; class 1: tp 2, union 3; class 2: tp 1, union 1; class 3 absent
    assert r["iou"][:3] == pytest.approx([0.5, 2 / 3, 1.0])
    assert math.isnan(r["iou"][3])
    assert r["miou"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert r["pixel_accuracy"] == pytest.approx(4 / 5)
    assert r["mean_accuracy"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert r["pixels"] == 5


def test_segmentation_metrics_accumulate_and_reject_out_of_range_predictions():
    m = SegmentationMetrics(2)
    m.update(np.array([0, 1]), np.array([0, 1]))
    m.update(np.array([7]), np.array([1]))  # id 7 is no class: a miss for class 1
    r = m.compute()
    assert r["iou"] == pytest.approx([1.0, 0.5])
    assert r["pixel_accuracy"] == pytest.approx(2 / 3)


def test_depth_metrics_by_hand():
    pred = np.array([[2.0, 4.0, 5.0]])
    gt = np.array([[1.0, 4.0, 0.0]])  # 0 = missing, so only two pixels count
    m = DepthMetrics()
    m.update(pred, gt)
    r = m.compute()
    ln2 = math.log(2)
    assert r["abs_rel"] == pytest.approx(0.5)
    assert r["sq_rel"] == pytest.approx(0.5)
    assert r["rmse"] == pytest.approx(math.sqrt(0.5))
    assert r["rmse_log"] == pytest.approx(ln2 / math.sqrt(2))
    assert r["silog"] == pytest.approx(100 * ln2 / 2)
    assert (r["delta1"], r["delta2"], r["delta3"]) == pytest.approx((0.5, 0.5, 0.5))
    assert r["images"] == 1


def test_depth_metrics_average_per_image_and_median_scaling():
    m = DepthMetrics()
    m.update(np.array([[[1.0]], [[3.0]]]), np.array([[[1.0]], [[2.0]]]))
    assert m.compute()["abs_rel"] == pytest.approx((0.0 + 0.5) / 2)
    ms = DepthMetrics(median_scaling=True)
    gt = np.array([[1.0, 2.0, 3.0]])
    ms.update(2 * gt, gt)
    r = ms.compute()
    assert r["abs_rel"] == pytest.approx(0.0, abs=1e-12) and r["median_scale"] == pytest.approx(0.5)


def test_caps_and_crops():
    gt = np.full((100, 200), 10.0)
    gt[60, 100] = 90.0  # beyond the 80 m cap: ignored
    pred = np.full_like(gt, 10.0)
    pred[60, 100] = 1.0
    m = DepthMetrics("kitti_eigen")
    m.update(pred, gt)
    assert m.compute()["abs_rel"] == 0.0
    # predictions are clipped to the cap: 200 m vs 40 m gt is 80 vs 40
    m50 = DepthMetrics("kitti_garg_50")
    m50.update(np.full((100, 200), 200.0), np.full((100, 200), 40.0))
    assert m50.compute()["abs_rel"] == pytest.approx(0.25)
    mask = PROTOCOLS["kitti_garg"].crop_mask(100, 200)
    rows, cols = np.where(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (40, 98, 7, 191)
    nyu = get_protocol("nyud_eigen").crop_mask(480, 640)
    rows, cols = np.where(nyu)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (45, 471, 41, 601)
    assert get_protocol("nyud_eigen").max_depth == 10.0
