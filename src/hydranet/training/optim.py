"""Optimiser with per-part learning rates (encoder = ``layer1..layer8``, decoder = the rest) and schedules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import InputError

_ENCODER = re.compile(r"^layer[1-8]\.")


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(encoder, decoder) parameters: encoder = modules ``layer1``..``layer8``, decoder = everything else."""
    enc, dec = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (enc if _ENCODER.match(name) else dec).append(p)
    return enc, dec


def build_optimizer(model: nn.Module, opt: Mapping[str, Any], extra: list[nn.Parameter] | None = None,
                    pose: list[nn.Parameter] | None = None) -> torch.optim.Optimizer:
    """SGD/Adam with groups encoder, decoder and (video training) pose at ``lr_pose``.

    ``extra`` (e.g. learned task weights) joins the decoder.
    """
    enc, dec = split_parameters(model)
    dec = dec + list(extra or [])
    groups = [{"params": enc, "lr": float(opt["lr_encoder"]), "name": "encoder"},
              {"params": dec, "lr": float(opt["lr_decoder"]), "name": "decoder"}]
    if pose:
        # The pose network starts from nothing while the depth network is fine-tuned: it may
        # need a larger step than the decoder to catch up within a short run.
        lr_pose = opt.get("lr_pose")
        groups.append({"params": list(pose), "lr": float(lr_pose if lr_pose is not None else opt["lr_decoder"]),
                       "name": "pose"})
    name = opt["name"]
    wd = float(opt["weight_decay"])
    if name == "sgd":
        return torch.optim.SGD(groups, lr=float(opt["lr_decoder"]), momentum=float(opt["momentum"]),
                               weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(groups, lr=float(opt["lr_decoder"]), weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=float(opt["lr_decoder"]), weight_decay=wd)
    raise InputError(f"unknown optimiser {name!r}; choose sgd, adam or adamw")


def lr_factor(step: int, total: int, opt: Mapping[str, Any]) -> float:
    """Multiplier of the base learning rates at optimiser step ``step`` of ``total``."""
    warm = int(opt.get("warmup_steps") or 0)
    factor = 1.0
    if warm and step < warm:
        factor = (step + 1) / warm
    kind = opt["schedule"]
    if kind == "poly":
        factor *= max(0.0, 1.0 - step / max(total, 1)) ** float(opt["poly_power"])
    elif kind == "step":
        factor *= float(opt["gamma"]) ** (step // max(int(opt["step_size"]), 1))
    elif kind != "constant":
        raise InputError(f"unknown schedule {kind!r}; choose poly, step or constant")
    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int,
                    opt: Mapping[str, Any]) -> torch.optim.lr_scheduler.LambdaLR:
    lr_factor(0, total_steps, opt)  # validates the schedule name early
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, opt))
