"""Training configuration: a YAML file plus ``key.sub=value`` overrides, checked up front.

See ``configs/examples/*.yaml`` for annotated examples and ``configs/recipes/`` for the
bundled model's recipe. Unknown keys are errors (a typo must not silently train something else).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..data.weather import WEATHER_KINDS
from ..errors import InputError
from ..evaluation.protocols import PROTOCOLS
from ..model.config import ENCODERS, MAX_CLASSES, MAX_DECODER_CHANNELS, TASKS
from .losses import DEPTH_LOSSES
from .weighting import WEIGHTINGS

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
        "verify": True,               # decode every image/label/depth file once before training
    },
    "augment": {
        "resize": None,               # [H, W] before everything else
        "canonical_scale": False,     # first resize samples with a camera to the model's canonical focal length
        "scale": [0.5, 2.0],
        "scale_depth": False,         # divide depth by the scale factor (metric depth for one focal length)
        "crop_size": [256, 256],
        "flip": True,
        "color_jitter": 0.0,
        "weather_p": 0.0,
        "weather_kinds": None,
        "weather_severity": [1, 5],
        # ImageNet-C / RoboDepth corruptions on the image (hydranet.data.corruptions): a group
        # such as standard, or a list of names/groups; null = off.
        "corruptions": None,
        "corruption_p": 0.0,
        "corruption_severity": [1, 5],
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
        "lr_pose": None,              # the pose network of video training (new weights); null = lr_decoder
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
        # Column order of depths from the labels (losses.ordinal_rules); weight 0 turns it off.
        "ordinal": {"weight": 0.0, "offsets": [2, 8, 24], "margin": 0.01},
        # Scale-invariant gradient matching of log depth on 1, 2, 4... pixel grids
        # (losses.gradient_loss_sum); weight 0 turns it off.
        "gradient": {"weight": 0.0, "scales": 4},
        # Self-supervised depth from video datasets (type: video), monodepth2's recipe
        # (hydranet.training.view_synthesis); weight 0 turns it off.
        "view_synthesis": {
            "weight": 0.0,
            "ssim": 0.85,             # SSIM's share of the photometric error (the rest is L1)
            "smoothness": 0.001,      # edge-aware smoothness of the mean-normalised inverse depth
            "automask": True,         # drop pixels that the unwarped neighbours already match
            "scales": 2,              # image scales the loss is computed at (1 = full only)
            "mask_classes": [],       # predicted classes left out, e.g. [sky, car, pedestrian, bicyclist]
            "camera_height": None,    # metres above the road: fixes the scale by the predicted road
            "height_weight": 0.1,
            "pose_warmup": 0,         # first steps in which video trains the pose network only
            "pose_network": "sfmlearner",
            # Where the depth's motions come from: the pose network trained by the photometric
            # loss (network), or direct alignment of each pair of frames with the depth at the
            # time the pair is first drawn, which the pose network then learns to predict (align).
            "motion": "network",
            "align_steps": 80,        # Adam steps of each pair's alignment (motion: align)
        },
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

# Mappings that are one value (replaced as a whole by a config), not a section of keys.
LEAF_MAPPINGS: tuple[str, ...] = ("weights",)


@dataclass(frozen=True)
class Rule:
    """What one config value may be; :meth:`expected` says it in words for the error message."""

    kind: str                       # bool | int | number | text | choice | pair | list | mapping | any
    low: float | None = None        # the smallest number allowed (of the value, or of each item)
    high: float | None = None       # the largest number allowed
    above: bool = False             # ``low`` itself is not allowed (> low rather than >= low)
    optional: bool = False          # null (None) is allowed
    choices: tuple[str, ...] = ()   # choice: the words allowed; list / mapping: the names allowed
    item: str = "number"            # pair / list / mapping: what each item is (int, number, text, mapping)
    ordered: bool = False           # pair: the first is at most the second
    nonempty: bool = False          # list: at least one item
    form: str = ""                  # pair: how it is written, e.g. [H, W]

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.kind == "any":
            return True
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if self.kind in ("int", "number", "text"):
            return self._item(self.kind, value)
        if self.kind in ("pair", "list"):
            if not isinstance(value, list) or not all(self._item(self.item, v) for v in value):
                return False
            if self.kind == "pair":
                return len(value) == 2 and (not self.ordered or value[0] <= value[1])
            return bool(value) or not self.nonempty
        if self.kind == "mapping":
            return isinstance(value, Mapping) and all(
                isinstance(k, str) and (not self.choices or k in self.choices) and self._item(self.item, v)
                for k, v in value.items())
        raise ValueError(f"unknown rule kind {self.kind!r}")

    def _item(self, kind: str, value: Any) -> bool:
        if kind == "text":
            return isinstance(value, str) and (not self.choices or value in self.choices)
        if kind == "mapping":
            return isinstance(value, Mapping)
        if isinstance(value, bool) or not isinstance(value, int if kind == "int" else (int, float)):
            return False  # YAML's true / false are not numbers here
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.above and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def _bounds(self) -> str:
        if self.low is not None and self.high is not None:
            return f" from {self.low:g} to {self.high:g}"
        if self.low is not None:
            return f" {'>' if self.above else '>='} {self.low:g}"
        return f" <= {self.high:g}" if self.high is not None else ""

    def expected(self) -> str:
        """E.g. ``a whole number >= 1``, ``one of sgd, adam, adamw``, ``[low, high]: two numbers > 0 ...``."""
        plural = {"int": "whole numbers", "number": "numbers", "text": "names", "mapping": "mappings"}
        items = plural[self.item] + (self._bounds() if self.item in ("int", "number") else "")
        if self.item == "text" and self.choices:
            items = f"names from {', '.join(self.choices)}"
        text = {
            "any": "any value",
            "bool": "true or false",
            "int": f"a whole number{self._bounds()}",
            "number": f"a number{self._bounds()}",
            "text": "text",
            "choice": f"one of {', '.join(self.choices)}",
            "pair": f"{self.form or '[a, b]'}: two {items}"
                    + (", the first at most the second" if self.ordered else ""),
            "list": f"a {'non-empty ' if self.nonempty else ''}list of {items}",
            "mapping": f"a mapping of {', '.join(self.choices) or 'names'} to {items}",
        }[self.kind]
        return text + (", or null" if self.optional else "")


_TEXT_OR_NULL = Rule("text", optional=True)
_SIZE = Rule("pair", item="int", low=1, optional=True, form="[H, W]")

# Every leaf of DEFAULTS is checked by its rule here or, when it has none, by the type of its
# default: true/false, a whole number >= 0, a number >= 0 or text. Keys whose default is null
# or a list must have a rule (tests/test_robustness.py checks that none is forgotten).
RULES: dict[str, Rule] = {
    "model.encoder": Rule("choice", choices=ENCODERS, optional=True),
    "model.num_classes": Rule("int", low=1, high=MAX_CLASSES, optional=True),
    "model.label_set": _TEXT_OR_NULL,
    "model.tasks": Rule("list", item="text", choices=TASKS, nonempty=True, optional=True),
    "model.init": _TEXT_OR_NULL,
    "model.encoder_weights": _TEXT_OR_NULL,
    "model.depth_range": Rule("pair", low=0, ordered=True, optional=True, form="[near, far] metres"),
    "model.canonical_focal": Rule("number", low=1, high=1e5, optional=True),
    "model.decoder_channels": Rule("int", low=1, high=MAX_DECODER_CHANNELS, optional=True),
    "model.bn_momentum": Rule("number", low=0, high=1, optional=True),
    "model.name": _TEXT_OR_NULL,
    "data.train": Rule("list", item="mapping"),
    "data.val": Rule("list", item="mapping"),
    "data.on_bad_label": Rule("choice", choices=("error", "missing")),
    "augment.resize": _SIZE,
    "augment.scale": Rule("pair", low=0, above=True, ordered=True, optional=True, form="[low, high]"),
    "augment.crop_size": _SIZE,
    "augment.color_jitter": Rule("number", low=0, high=1),
    "augment.weather_p": Rule("number", low=0, high=1),
    "augment.weather_kinds": Rule("list", item="text", choices=WEATHER_KINDS, nonempty=True, optional=True),
    "augment.weather_severity": Rule("pair", item="int", low=1, high=5, ordered=True, form="[low, high]"),
    # A name, or a list of names: checked against hydranet.data.corruptions in validate_config.
    "augment.corruptions": Rule("any", optional=True),
    "augment.corruption_p": Rule("number", low=0, high=1),
    "augment.corruption_severity": Rule("pair", item="int", low=1, high=5, ordered=True, form="[low, high]"),
    "val.resize": _SIZE,
    "val.batch_size": Rule("int", low=1),
    "val.every": Rule("int", low=1),
    "val.max_images": Rule("int", low=1, optional=True),
    "val.depth_protocol": Rule("choice", choices=tuple(PROTOCOLS), optional=True),
    "optim.name": Rule("choice", choices=("sgd", "adam", "adamw")),
    "optim.momentum": Rule("number", low=0, high=1),
    "optim.schedule": Rule("choice", choices=("poly", "step", "constant")),
    "optim.step_size": Rule("int", low=1),
    "optim.gamma": Rule("number", low=0, above=True),
    "optim.grad_clip": Rule("number", low=0, above=True, optional=True),
    "optim.lr_pose": Rule("number", low=0, above=True, optional=True),
    "loss.depth": Rule("choice", choices=tuple(DEPTH_LOSSES)),
    "loss.class_weights": Rule("list", low=0, nonempty=True, optional=True),
    "loss.weighting": Rule("choice", choices=tuple(WEIGHTINGS)),
    "loss.weights": Rule("mapping", choices=("segmentation", "depth"), low=0),
    "loss.dwa_temperature": Rule("number", low=0, above=True),
    "loss.ordinal.offsets": Rule("list", item="int", low=1, nonempty=True),
    "loss.gradient.scales": Rule("int", low=1, high=8),
    "loss.view_synthesis.ssim": Rule("number", low=0, high=1),
    "loss.view_synthesis.scales": Rule("int", low=1, high=4),
    "loss.view_synthesis.mask_classes": Rule("list", item="text"),
    "loss.view_synthesis.camera_height": Rule("number", low=0, above=True, optional=True),
    "loss.view_synthesis.pose_network": Rule("choice", choices=("sfmlearner",)),
    "loss.view_synthesis.motion": Rule("choice", choices=("network", "align")),
    "loss.view_synthesis.align_steps": Rule("int", low=1, high=1000),
    "batch_size": Rule("int", low=1),
    "accumulate": Rule("int", low=1),
    "epochs": Rule("int", low=1, optional=True),
    "steps": Rule("int", low=1, optional=True),
    "threads": Rule("int", low=1, optional=True),
    "log_every": Rule("int", low=1),
}


def leaf_keys(tree: Mapping[str, Any] = DEFAULTS, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every leaf of a config tree (DEFAULTS by default)."""
    for key, value in tree.items():
        if isinstance(value, Mapping) and key not in LEAF_MAPPINGS:
            yield from leaf_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def rule_for(key: str) -> Rule:
    """The rule of a dotted key: its entry in RULES, else the type of its default value."""
    if key in RULES:
        return RULES[key]
    default: Any = DEFAULTS
    for part in key.split("."):
        default = default[part]
    if isinstance(default, bool):
        return Rule("bool")
    if isinstance(default, int):
        return Rule("int", low=0)
    if isinstance(default, float):
        return Rule("number", low=0)
    if isinstance(default, str):
        return Rule("text")
    return Rule("any", optional=True)  # a new key without a rule yet: tests/test_robustness.py fails


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_rules(cfg: Mapping[str, Any]) -> None:
    """Every leaf of ``cfg`` against its rule; the first wrong one is an InputError naming the key."""
    for key, _ in leaf_keys(DEFAULTS):
        value: Any = cfg
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                break  # a hand-built config without this key: the code reading it decides
            value = value[part]
        else:
            rule = rule_for(key)
            if not rule.accepts(value):
                raise InputError(f"config {key}: {_short(value)} is not allowed; expected {rule.expected()}")


def _merge(base: dict[str, Any], update: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in base:
            raise InputError(f"unknown config key {where!r}; known here: {', '.join(sorted(base))}")
        if isinstance(base[key], dict) and not isinstance(value, Mapping):
            raise InputError(f"config {where}: {value!r} is not allowed; expected a mapping of keys to "
                             f"values (known: {', '.join(sorted(base[key])) or 'any'})")
        if isinstance(base[key], dict) and key not in LEAF_MAPPINGS:
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


def _set_in_list(cfg: dict[str, Any], keys: list[str], value: Any, text: str) -> None:
    """An override through a list, ``data.train.0.root=drive.mp4``: the entry's option is set or added."""
    node: Any = cfg
    for i, k in enumerate(keys[:-1]):
        where = ".".join(keys[:i + 1])
        if isinstance(node, list):
            if not k.isdigit() or int(k) >= len(node):
                raise InputError(f"override {text!r}: {'.'.join(keys[:i])} has no entry {k} "
                                 f"({len(node)} listed, numbered from 0)")
            node = node[int(k)]
        elif isinstance(node, Mapping) and k in node:
            node = node[k]
        else:
            raise InputError(f"override {text!r}: unknown config key {where!r}")
    last = keys[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise InputError(f"override {text!r}: {'.'.join(keys[:-1])} has no entry {last} "
                             f"({len(node)} listed, numbered from 0)")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value  # a dataset entry takes any option of its type; the dataset checks them
    else:
        raise InputError(f"override {text!r}: {'.'.join(keys[:-1])} is not a mapping or a list")


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
        if any(k.isdigit() for k in keys):
            _set_in_list(cfg, keys, value, text)
            continue
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


def _corruptions(augment: Mapping[str, Any]) -> None:
    """augment.corruptions: null, a name or group, or a non-empty list of them."""
    from ..data.corruptions import expand

    value = augment.get("corruptions")
    if value is None:
        return
    if not (isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))):
        raise InputError(f"config augment.corruptions: {_short(value)} is not allowed; expected a name or group "
                         "such as standard, a list of them, or null")
    try:
        expand(value)
    except InputError as exc:
        raise InputError(f"config augment.corruptions: {exc}") from None


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
    _number(cfg["loss"]["ordinal"], "weight", "loss.ordinal")
    _number(cfg["loss"]["ordinal"], "margin", "loss.ordinal")
    _number(cfg["loss"]["gradient"], "weight", "loss.gradient")
    offsets = cfg["loss"]["ordinal"]["offsets"]
    if not isinstance(offsets, list) or not offsets or not all(isinstance(k, int) and k > 0 for k in offsets):
        raise InputError(f"config loss.ordinal.offsets: {offsets!r} is not allowed; expected a list of "
                         "positive whole row offsets such as [2, 8, 24]")
    _corruptions(cfg["augment"])
    if cfg["loss"]["depth"] not in DEPTH_LOSSES:
        raise InputError(f"unknown loss.depth {cfg['loss']['depth']!r}; choose from {', '.join(DEPTH_LOSSES)}")
    check_rules(cfg)


def dump_config(cfg: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(cfg), sort_keys=False)
