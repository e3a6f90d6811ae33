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


def test_ordinal_rules_for_camvid():
    from hydranet.labels import get_label_set
    from hydranet.training.losses import ordinal_rules

    names = list(get_label_set("camvid11").class_names)
    rules = ordinal_rules(names)
    i = {n: k for k, n in enumerate(names)}
    assert rules[i["road"], i["car"]] and rules[i["road"], i["road"]] and rules[i["pavement"], i["building"]]
    assert rules[i["building"], i["sky"]] and rules[i["car"], i["road"]] and rules[i["car"], i["building"]]
    # No rule where the order depends on the scene: a facade above itself, a sign above a car.
    assert not rules[i["building"], i["building"]] and not rules[i["car"], i["sign"]]
    assert not rules[i["sky"], i["sky"]] and not rules[i["sky"], i["road"]]


def test_ordinal_loss_by_hand():
    from hydranet.labels import get_label_set
    from hydranet.training.losses import ordinal_depth_loss_sum, ordinal_rules

    rules = ordinal_rules(get_label_set("camvid11").class_names)
    sky, building, road, void = 0, 1, 3, 255
    # One column, top to bottom; the road at row 4 is farther than the road above it (wrong).
    labels = torch.tensor([sky, sky, building, road, road, road, void]).view(1, 7, 1)
    depth = torch.tensor([100.0, 100.0, 20.0, 10.0, 12.0, 5.0, 1.0]).view(1, 1, 7, 1).requires_grad_()
    total, count = ordinal_depth_loss_sum(depth, labels, rules, offsets=(1,), margin=0.01)
    # Pairs (below, above): building/sky, road/building, road/road twice; the void row takes part in none.
    assert count.item() == 4
    assert total.item() == pytest.approx(0.01 + math.log(12.0 / 10.0), abs=1e-6)
    total.backward()
    g = depth.grad.view(-1)
    # Only the violated pair moves: the upper road pixel (row 3) away, the lower one (row 4) nearer.
    assert g[3].item() == pytest.approx(-1 / 10.0) and g[4].item() == pytest.approx(1 / 12.0)
    assert g[[0, 1, 2, 5, 6]].abs().max().item() == 0.0
    # Offsets reaching past the image are skipped; larger offsets pair rows further apart.
    total2, count2 = ordinal_depth_loss_sum(depth, labels, rules, offsets=(2, 9), margin=0.0)
    assert count2.item() == 4 and total2.item() == 0.0  # sky/building, building/road, road/road x 2


def test_ordinal_offsets_are_checked():
    from hydranet.errors import InputError
    from hydranet.training.config import load_config, validate_config

    cfg = load_config(None, ["data.train=[{type: folder, root: x}]", "steps=1"])
    cfg["loss"]["ordinal"]["offsets"] = [0, 3]
    with pytest.raises(InputError, match="loss.ordinal.offsets"):
        validate_config(cfg)


def test_gradient_loss_by_hand_and_scale_invariant():
    from hydranet.training.losses import gradient_count, gradient_loss_sum

    gt = torch.tensor([[[[2.0, 4.0, 8.0], [2.0, 0.0, 8.0]]]])  # the middle of row 2 has no depth
    flat = torch.full((1, 1, 2, 3), 4.0)
    total, count = gradient_loss_sum(flat, gt, scales=1)
    # R = log 4 - log t: [log 2, 0, -log 2] / [log 2, -, -log 2]. x pairs: row 1 two of log 2,
    # row 2 none (its middle is missing); y pairs: columns 1 and 3, zero difference.
    assert count.item() == 4 == gradient_count(gt, scales=1).item()
    assert total.item() == pytest.approx(2 * math.log(2), rel=1e-6)
    # The truth times any scale costs nothing; so does the truth with a sign (depth is |output|).
    assert gradient_loss_sum(-3.0 * gt.clamp_min(1.0), gt, scales=2)[0].item() == pytest.approx(0.0, abs=1e-6)
    # The stride-2 grid would be 1 x 2, too small for pairs both ways: it is left out.
    total2, count2 = gradient_loss_sum(flat, gt, scales=2)
    assert count2.item() == 4 and total2.item() == pytest.approx(2 * math.log(2), rel=1e-6)
    # On 4 x 4, stride 2 keeps pixels (0, 0), (0, 2), (2, 0), (2, 2): 2 x pairs + 2 y pairs more.
    big = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    r = torch.log(torch.tensor(5.0)) - big.log()
    by_hand = sum((r[0, 0, :, 1:] - r[0, 0, :, :-1]).abs().flatten()) + \
        sum((r[0, 0, 1:] - r[0, 0, :-1]).abs().flatten())
    sub = r[0, 0, ::2, ::2]
    by_hand = by_hand + sum((sub[:, 1:] - sub[:, :-1]).abs().flatten()) + sum((sub[1:] - sub[:-1]).abs().flatten())
    total4, count4 = gradient_loss_sum(torch.full((1, 1, 4, 4), 5.0), big, scales=2)
    assert count4.item() == 24 + 4 == gradient_count(big, scales=2).item()
    assert total4.item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_counts_from_targets_alone_are_the_loss_normalisers():
    from hydranet.labels import get_label_set
    from hydranet.training.losses import (depth_count, ordinal_count, ordinal_depth_loss_sum, ordinal_rules,
                                          segmentation_count)

    torch.manual_seed(0)
    labels = torch.randint(0, 13, (2, 9, 7))
    labels[0, :2] = 255
    logits = torch.randn(2, 11, 9, 7)
    cw = torch.rand(11) + 0.5
    assert segmentation_count(labels, 11, class_weights=cw).item() == pytest.approx(
        segmentation_loss_sum(logits, labels, class_weights=cw)[1].item(), rel=1e-6)
    depth = torch.rand(2, 1, 9, 7) * 10
    depth[1] = 0.0  # the second image has no depth at all
    depth[0, 0, 0, 0] = float("nan")
    pred = torch.rand(2, 1, 9, 7) + 1
    for kind in ("berhu", "l1", "log_l1", "silog"):
        assert depth_count(depth, kind).item() == depth_loss_sum(pred, depth, kind)[1].item()
    assert depth_count(depth, "silog").item() == 1 and depth_count(depth, "l1").item() == 62
    rules = ordinal_rules(get_label_set("camvid11").class_names)
    assert ordinal_count(labels, rules, (1, 3)).item() == ordinal_depth_loss_sum(pred, labels, rules, (1, 3))[1].item()
    from hydranet.training.losses import gradient_count, gradient_loss_sum
    assert gradient_count(depth, 3).item() == gradient_loss_sum(pred, depth, 3)[1].item() > 0
