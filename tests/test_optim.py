"""The optimiser's parts and schedules by hand values."""

from __future__ import annotations

import pytest
import torch

import hydranet
from hydranet.training.optim import build_optimizer, build_scheduler, lr_factor, split_parameters

OPT = {"name": "sgd", "lr_encoder": 1e-3, "lr_decoder": 1e-2, "momentum": 0.9, "weight_decay": 0.0,
       "schedule": "poly", "poly_power": 0.9, "step_size": 10, "gamma": 0.5, "warmup_steps": 0}


def test_encoder_is_layer1_to_layer8_and_gets_its_own_rate():
    model = hydranet.create_model("kitti6")
    enc, dec = split_parameters(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert enc and dec and len(enc) + len(dec) == len(list(model.parameters()))
    assert all(names[id(p)].split(".")[0] in {f"layer{i}" for i in range(1, 9)} for p in enc)
    assert not any(names[id(p)].startswith("layer") for p in dec)  # decoder and heads
    groups = build_optimizer(model, OPT).param_groups
    assert [(g["name"], g["lr"]) for g in groups] == [("encoder", 1e-3), ("decoder", 1e-2)]


@pytest.mark.parametrize("opt, step, total, expected", [
    ({"schedule": "poly", "poly_power": 0.9}, 50, 100, 0.5 ** 0.9),
    ({"schedule": "poly", "poly_power": 1.0, "warmup_steps": 10}, 4, 100, 0.5 * 0.96),
    ({"schedule": "step", "step_size": 10, "gamma": 0.5}, 25, 100, 0.25),
    ({"schedule": "constant"}, 99, 100, 1.0),
])
def test_schedules_by_hand_values(opt, step, total, expected):
    assert lr_factor(step, total, {**OPT, **opt}) == pytest.approx(expected)


def test_scheduler_scales_both_groups():
    model = hydranet.create_model("kitti6")
    optimizer = build_optimizer(model, {**OPT, "schedule": "step", "step_size": 1, "gamma": 0.5})
    scheduler = build_scheduler(optimizer, 10, {**OPT, "schedule": "step", "step_size": 1, "gamma": 0.5})
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.25e-3, 0.25e-2])


def test_training_with_bf16_really_computes_in_bf16(tmp_path):
    from test_train import tiny_config

    from hydranet.training.trainer import Trainer

    cfg = tiny_config(tmp_path, steps=1, bf16=True)
    trainer = Trainer(cfg, log=lambda m: None)
    seen = []
    trainer.model.segm.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    trainer.fit()
    assert seen and all(d == torch.bfloat16 for d in seen)
    fp32 = Trainer(tiny_config(tmp_path / "b", steps=1), log=lambda m: None)
    seen.clear()
    fp32.model.segm.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    fp32.fit()
    assert seen and all(d == torch.float32 for d in seen)
