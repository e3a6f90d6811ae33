"""Training configuration: a YAML file plus ``key.sub=value`` overrides, checked up front.

See ``configs/examples/*.yaml`` for annotated examples and ``configs/recipes/`` for the
bundled model's recipe. Unknown keys are errors (a typo must not silently train something else).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from .losses import DEPTH_LOSSES

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "output": "runs/train",
    "model": {
        "factory": "camvid11",        # a name of hydranet.list_models(), or "hydranet" (generic)
        "encoder": None,              # mobilenetv2 | efficientnet_lite0 (None: the factory's)
        "num_classes": None,          # generic factory / override
        "label_set": None,            # classes the datasets are remapped to (default: the factory's)
        "tasks": None,                # e.g. [segmentation, depth]
        "init": None,                 # .safetensors / .ckpt to start from (heads skipped on class mismatch)
        "encoder_weights": None,      # imagenet: hydranet.model.efficientnet.load_imagenet_encoder
        "depth_range": None,
        "canonical_focal": None,      # pixels: train depth for this focal length (camera-aware weights)
        "decoder_channels": None,     # decoder width (256 in the paper; smaller for quick experiments)
        "bn_momentum": None,          # BatchNorm running-stat momentum (None: the encoder's own)
        "name": None,
    },
    "data": {
        "train": [],                  # list of dataset entries {type, root, split, targets, remap, ...}
        "val": [],
        "on_bad_label": "error",      # error (stop before training) | missing (drop the target)
        "num_workers": 0,
        "verify": True,               # decode every label/depth file once before training
    },
    "augment": {
        "resize": None,               # [H, W] before everything else
        "scale": [0.5, 2.0],
        "scale_depth": False,         # divide depth by the scale factor (metric depth for one focal length)
        "crop_size": [256, 256],
        "flip": True,
        "color_jitter": 0.0,
        "weather_p": 0.0,
        "weather_kinds": None,
        "weather_severity": [1, 5],
    },
    "val": {
        "resize": None,               # [H, W] for validation inputs (labels stay at full size)
        "batch_size": 1,
        "every": 1,                   # epochs
        "max_images": None,
        "depth_protocol": None,       # default: cap at the model's depth range
    },
    "optim": {
        "name": "sgd",                # sgd | adam | adamw
        "lr_encoder": 1e-3,
        "lr_decoder": 1e-2,
        "momentum": 0.9,
        "weight_decay": 1e-5,
        "schedule": "poly",           # poly | step | constant
        "poly_power": 0.9,
        "step_size": 1000,            # steps, for schedule: step
        "gamma": 0.5,
        "warmup_steps": 0,
        "grad_clip": None,
    },
    "loss": {
        "depth": "berhu",             # berhu | l1 | log_l1 | silog
        "class_weights": None,        # list of per-class weights
        "weighting": "fixed",         # fixed | uncertainty | dwa
        "weights": {"segmentation": 1.0, "depth": 1.0},
        "dwa_temperature": 2.0,
    },
    "batch_size": 8,                  # global batch (split across DDP ranks)
    "accumulate": 1,                  # gradient accumulation steps per optimiser step
    "epochs": None,
    "steps": None,                    # optimiser steps; overrides epochs
    "bf16": False,                    # bf16 autocast on CPU
    "float64": False,                 # train in double precision (numerical verification, e.g. DDP)
    "freeze_bn": False,               # keep BatchNorm statistics fixed (small batches)
    "threads": None,                  # torch.set_num_threads
    "checkpoint_every": 0,            # steps (0: at each epoch end only)
    "log_every": 10,
    "tensorboard": True,
}


def _merge(base: dict[str, Any], update: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in base:
            raise InputError(f"unknown config key {where!r}; known here: {', '.join(sorted(base))}")
        if isinstance(base[key], dict) and not isinstance(value, Mapping):
            raise InputError(f"config {where}: {value!r} is not allowed; expected a mapping of keys to "
                             f"values (known: {', '.join(sorted(base[key])) or 'any'})")
        if isinstance(base[key], dict) and key not in ("weights",):
            _merge(base[key], value, where + ".")
        else:
            base[key] = value
    return base


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` with a YAML-parsed value."""
    if "=" not in text:
        raise InputError(f"override {text!r} must look like key.sub=value, e.g. optim.lr_decoder=0.01")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def _read_yaml(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise InputError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a text file (not UTF-8); a config is YAML text") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, Mapping):
        raise InputError(f"{p}: the config must be a mapping of keys to values")
    return dict(data)


def _layers(p: Path, seen: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    """The file's chain of ``base:`` files, the farthest first; a base path is relative to its file."""
    if p.resolve() in seen:
        raise InputError(f"{p}: 'base:' chain loops back to {p.name}")
    data = _read_yaml(p)
    base = data.pop("base", None)
    if base is None:
        return [data]
    if not isinstance(base, str):
        raise InputError(f"{p}: 'base' must be the path of another config, got {base!r}")
    return _layers(p.parent / base, (*seen, p.resolve())) + [data]


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Defaults, updated by the YAML file (after the files it names as ``base:``), then by the overrides.

    A mapping merges key by key into its base; any other value (a list, such as
    ``data.train``) replaces the base's.
    """
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        for data in _layers(Path(path)):
            _merge(cfg, data)
    for text in overrides:
        keys, value = parse_override(text)
        update: Any = value
        for k in reversed(keys):
            update = {k: update}
        _merge(cfg, update)
    validate_config(cfg)
    return cfg


def _positive_int(cfg: Mapping[str, Any], key: str, allow_none: bool = False) -> None:
    value = cfg[key]
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"config {key}: {value!r} is not allowed; expected a whole number of at least 1")


def _number(section: Mapping[str, Any], key: str, where: str, allow_none: bool = False) -> None:
    value = section.get(key)
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        raise InputError(f"config {where}.{key}: {value!r} is not allowed; expected a number >= 0")


def validate_config(cfg: Mapping[str, Any]) -> None:
    for key in ("steps", "epochs"):
        _positive_int(cfg, key, allow_none=True)
    for key in ("batch_size", "accumulate"):
        _positive_int(cfg, key)
    for key in ("lr_encoder", "lr_decoder", "weight_decay", "momentum"):
        _number(cfg["optim"], key, "optim")
    if not isinstance(cfg["data"]["train"], list) or not all(isinstance(d, Mapping) for d in cfg["data"]["train"]):
        raise InputError("config data.train: expected a list of dataset entries such as "
                         "[{type: camvid, root: DIR}]")
    if not cfg["data"]["train"]:
        raise InputError("no training data: list datasets under data.train in the config")
    if cfg["epochs"] is None and cfg["steps"] is None:
        raise InputError("set epochs or steps in the config (or --epochs / --steps)")
    if int(cfg["batch_size"]) < 1 or int(cfg["accumulate"]) < 1:
        raise InputError("batch_size and accumulate must be at least 1")
    if cfg["data"]["on_bad_label"] not in ("error", "missing"):
        raise InputError("data.on_bad_label must be error or missing")
    if cfg["loss"]["depth"] not in DEPTH_LOSSES:
        raise InputError(f"unknown loss.depth {cfg['loss']['depth']!r}; choose from {', '.join(DEPTH_LOSSES)}")


def dump_config(cfg: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(cfg), sort_keys=False)
