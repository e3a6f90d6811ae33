"""Building the model to train: factory + encoder + classes, weights to start from."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

import torch

from ..checkpoints import load_model
from ..errors import CheckpointError, InputError
from ..labels import generic_label_set, get_label_set
from ..model import HydraNet, ModelConfig
from ..model import ARCHITECTURES, model_config


def build_model(spec: Mapping[str, Any]) -> HydraNet:
    """A randomly initialised HydraNet from the config's ``model`` section.

    ``factory`` names a built-in configuration (``camvid11``, ``kitti6``...) or
    ``hydranet`` (generic); ``encoder``, ``num_classes``, ``label_set``, ``tasks`` and
    ``depth_range`` override it.
    """
    factory = spec.get("factory") or "hydranet"
    if factory == "hydranet":
        if not spec.get("num_classes") and not spec.get("label_set"):
            raise InputError("model.factory hydranet needs model.num_classes or model.label_set")
        base = ModelConfig(num_classes=int(spec.get("num_classes") or 1))
    elif factory in ARCHITECTURES:
        base = model_config(factory)
    else:
        raise InputError(f"unknown model.factory {factory!r}; choose from hydranet, {', '.join(ARCHITECTURES)}")
    changes: dict[str, Any] = {}
    if spec.get("label_set"):
        try:
            ls = get_label_set(spec["label_set"])
        except KeyError as exc:
            raise InputError(str(exc).strip("'\"")) from None
        changes.update(num_classes=ls.num_classes, label_set=ls.name, class_names=list(ls.class_names),
                       palette=[list(c) for c in ls.palette])
    elif spec.get("num_classes") and int(spec["num_classes"]) != base.num_classes:
        g = generic_label_set(int(spec["num_classes"]))
        changes.update(num_classes=g.num_classes, label_set=None, class_names=list(g.class_names),
                       palette=[list(c) for c in g.palette])
    elif factory == "hydranet":
        g = generic_label_set(base.num_classes)
        changes.update(class_names=list(g.class_names), palette=[list(c) for c in g.palette])
    if spec.get("encoder"):
        changes["encoder"] = spec["encoder"]
    if spec.get("tasks"):
        changes["tasks"] = tuple(spec["tasks"])
    if spec.get("decoder_channels"):
        changes["decoder_channels"] = int(spec["decoder_channels"])
    if spec.get("name"):
        changes["name"] = str(spec["name"])
    if spec.get("canonical_focal"):
        changes["canonical_focal"] = float(spec["canonical_focal"])
    if spec.get("depth_range"):
        changes["depth_range"] = tuple(float(v) for v in spec["depth_range"])
    try:
        config = dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise InputError(f"model config: {exc}") from None
    if changes.get("encoder") and not spec.get("name") and config.encoder not in config.name:
        stem = (config.name or factory).replace(f"_{base.encoder}", "")
        config.name = f"{stem}_{config.encoder}"
    model = HydraNet(config)
    if spec.get("bn_momentum") is not None:
        set_bn_momentum(model, float(spec["bn_momentum"]))
    return model


def set_bn_momentum(model: torch.nn.Module, momentum: float) -> int:
    """Set every BatchNorm's running-statistics momentum; the number of layers changed.

    EfficientNet-Lite0 keeps TensorFlow's 0.01, which leaves the running statistics
    hundreds of steps behind the weights in a short CPU run; 0.1 (PyTorch's) tracks them.
    """
    if not 0.0 < momentum <= 1.0:
        raise InputError(f"model.bn_momentum must be in (0, 1], got {momentum}")
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.momentum = momentum
    return len(layers)


def init_weights(model: HydraNet, source: str) -> str:
    """Copy every tensor of ``source`` whose name and shape match; a one-line report.

    With a different class count the segmentation head is left at its random init
    (and listed); any other mismatch is an error, since it means another architecture.
    """
    donor = load_model(source)
    theirs = donor.state_dict()
    ours = model.state_dict()
    head = ("segm.",)
    loaded, mismatched, new = {}, [], []
    for key, value in ours.items():
        other = theirs.get(key)
        if other is None:
            new.append(key)
        elif other.shape != value.shape:
            mismatched.append(key)
        else:
            loaded[key] = other
    wrong = [k for k in mismatched if not k.startswith(head)]
    if wrong or len(new) == len(ours):
        raise CheckpointError(f"{source}: weights do not fit this model ({', '.join((wrong or new)[:3])} "
                              f"differ); they are for encoder {donor.config.encoder}, the config asks for "
                              f"{model.config.encoder}")
    with torch.no_grad():
        for key, value in loaded.items():
            ours[key].copy_(value)
    report = f"init: {len(loaded)}/{len(ours)} tensors from {source}"
    if mismatched:
        report += (f"; NOT loaded (class-count mismatch, weights have {donor.config.num_classes} classes, "
                   f"model {model.config.num_classes}): {', '.join(mismatched)}")
    if new:
        report += f"; new (absent from the weights): {', '.join(new)}"
    return report


def load_encoder_weights(model: HydraNet, kind: str | None) -> str | None:
    """``encoder_weights: imagenet`` for encoders that ship ImageNet weights (efficientnet_lite0)."""
    if not kind:
        return None
    if kind != "imagenet":
        raise InputError(f"model.encoder_weights must be imagenet or empty, got {kind!r}")
    if model.config.encoder == "efficientnet_lite0":
        try:
            module = importlib.import_module("hydranet.model.efficientnet")
        except ImportError:
            module = None
        loader = getattr(module, "load_imagenet_encoder", None)
        if loader is None:
            raise InputError("this installation has no ImageNet weights loader for efficientnet_lite0")
        result = loader(model)
        return f"encoder: ImageNet weights loaded into efficientnet_lite0 ({result} tensors)"
    raise InputError(f"no ImageNet weights are available for encoder {model.config.encoder}; "
                     "use model.init with a trained checkpoint, or encoder efficientnet_lite0")
