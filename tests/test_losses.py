"""Losses and task weightings against hand-computed values; missing targets add nothing."""

import math

import pytest
import torch
import torch.nn.functional as F

from hydranet.training.losses import (berhu_threshold, depth_loss, depth_loss_sum, segmentation_loss,
                                      segmentation_loss_sum)
from hydranet.training.weighting import DWAWeighting, FixedWeighting, UncertaintyWeighting, build_weighting


def test_cross_entropy_ignores_void_and_uses_class_weights():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # (1, 2 classes, 1, 2)
    target = torch.tensor([[[0, 255]]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert float(segmentation_loss(logits, target)) == pytest.approx(expected)
    target2 = torch.tensor([[[0, 1]]])
    w = torch.tensor([1.0, 3.0])
    assert float(segmentation_loss(logits, target2, class_weights=w)) == pytest.approx(
        float(F.cross_entropy(logits, target2, weight=w)))


def test_ids_without_a_class_are_ignored_not_clamped():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])
    assert float(segmentation_loss(logits, torch.tensor([[[0, 7]]]))) == pytest.approx(
        float(segmentation_loss(logits, torch.tensor([[[0, 255]]]))))


def test_segmentation_logits_are_upsampled_to_label_size():
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 15, 19))
    up = F.interpolate(logits, size=(15, 19), mode="bilinear", align_corners=False)
    assert float(segmentation_loss(logits, target)) == pytest.approx(float(F.cross_entropy(up, target)), rel=1e-5)


def test_depth_losses_by_hand():
    pred = torch.tensor([[[[1.0, 3.0, 2.0, 7.0]]]])
    gt = torch.tensor([[[[2.0, 3.0, 0.0, 2.0]]]])  # third pixel missing
    # errors 1, 0, 5 over 3 valid pixels
    assert float(depth_loss(pred, gt, "l1")) == pytest.approx(2.0)
    c = float(berhu_threshold(pred, gt))
    assert c == pytest.approx(1.0)  # max error 5 / 5
    # berHu: |e| <= c -> |e|; else (e^2 + c^2) / 2c: (1 + 0 + (25 + 1) / 2) / 3
    assert float(depth_loss(pred, gt, "berhu")) == pytest.approx((1 + 0 + 13) / 3)
    d = [math.log(0.5), 0.0, math.log(3.5)]
    mean_d2 = sum(v * v for v in d) / 3
    mean_d = sum(d) / 3
    assert float(depth_loss(pred, gt, "silog")) == pytest.approx(mean_d2 - 0.85 * mean_d ** 2, rel=1e-5)
    # log L1: mean |log p - log t| = (log 2 + 0 + log 3.5) / 3
    assert float(depth_loss(pred, gt, "log_l1")) == pytest.approx((math.log(2) + math.log(3.5)) / 3, rel=1e-6)


def test_log_l1_is_relative_and_reads_depth_as_abs():
    gt = torch.tensor([[[[5.0, 40.0]]]])
    # 1 m wrong at 5 m costs what 8 m wrong at 40 m costs (same ratio)
    near, far = depth_loss_sum(torch.tensor([[[[6.0, 40.0]]]]), gt, "log_l1")[0], \
        depth_loss_sum(torch.tensor([[[[5.0, 48.0]]]]), gt, "log_l1")[0]
    assert float(near) == pytest.approx(float(far), rel=1e-6)
    # a negative head output counts as its absolute value, as at inference
    assert float(depth_loss(torch.tensor([[[[-5.0, -40.0]]]]), gt, "log_l1")) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("kind", ["berhu", "l1", "log_l1", "silog"])
def test_missing_targets_contribute_zero_and_no_nan(kind):
    pred = torch.randn(2, 1, 4, 4, requires_grad=True)
    s, n = depth_loss_sum(pred, torch.zeros(2, 1, 4, 4), kind)
    assert float(s.detach()) == 0.0 and float(n) == 0.0
    s.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    s, n = segmentation_loss_sum(logits, torch.full((2, 4, 4), 255))
    s.backward()
    assert float(n) == 0 and torch.isfinite(logits.grad).all() and float(logits.grad.abs().sum()) == 0


def test_weightings():
    losses = {"segmentation": torch.tensor(2.0), "depth": torch.tensor(4.0)}
    assert float(FixedWeighting(["segmentation", "depth"], {"depth": 0.5})(losses)) == 4.0
    # a task absent from the batch adds nothing
    assert float(FixedWeighting(["segmentation", "depth"])({"segmentation": torch.tensor(2.0)})) == 2.0
    u = UncertaintyWeighting(["segmentation", "depth"])
    with torch.no_grad():
        u.log_vars.copy_(torch.tensor([math.log(2.0), 0.0]))
    # exp(-s) L + s/2 for classification, exp(-s) L / 2 + s/2 for regression
    assert float(u(losses).detach()) == pytest.approx(0.5 * 2 + 0.5 * math.log(2) + 0.5 * 4)
    dwa = DWAWeighting(["segmentation", "depth"], temperature=2.0)
    assert dwa.current_weights() == {"segmentation": 1.0, "depth": 1.0}
    dwa.end_epoch({"segmentation": 1.0, "depth": 1.0})
    dwa.end_epoch({"segmentation": 0.5, "depth": 1.0})
    e1, e2 = math.exp(0.5 / 2), math.exp(1.0 / 2)
    w = dwa.current_weights()
    assert w["segmentation"] == pytest.approx(2 * e1 / (e1 + e2)) and w["depth"] == pytest.approx(2 * e2 / (e1 + e2))
    with pytest.raises(ValueError, match="unknown task weighting"):
        build_weighting("magic", ["segmentation"])
