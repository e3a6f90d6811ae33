"""The project's own weights format: safetensors with the model configuration in its metadata."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import CheckpointError
from ..fileio import atomic_path
from ..model import HydraNet, ModelConfig
from .official import load_state_strict

FORMAT_NAME = "hydranet"
FORMAT_VERSION = "1"


def save_weights(model: HydraNet, path: str | Path, metadata: dict[str, Any] | None = None,
                 dtype: torch.dtype | None = None) -> Path:
    """Write ``model``'s weights and configuration to a ``.safetensors`` file, atomically.

    ``metadata`` adds free-form JSON-serialisable entries (e.g. training command).
    ``dtype`` (e.g. ``torch.float16``) stores floating-point tensors in that type; they are
    loaded back into the model's float32.
    """
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": model.config.to_json()}
    if metadata:
        meta["extra"] = json.dumps(metadata, sort_keys=True)
    with atomic_path(path, fsync=True) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a hydranet safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; check the path")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc}); "
                              "the file is truncated or corrupt, write or download it again") from None
    if meta.get("format") != FORMAT_NAME or "config" not in meta:
        raise CheckpointError(f"{path}: safetensors file without a hydranet configuration; "
                              "save weights with hydranet.save_weights()")
    return meta


def load_own(path: str | Path, num_classes: int | None = None) -> HydraNet:
    """Rebuild the model described in a hydranet safetensors file and load its weights."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        config = ModelConfig.from_json(meta["config"])
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise CheckpointError(f"{path}: invalid model configuration in metadata ({exc}); "
                              "the file is damaged or was not written by hydranet.save_weights()") from None
    if num_classes is not None and num_classes != config.num_classes:
        raise CheckpointError(f"{path}: the weights have {config.num_classes} classes but "
                              f"{num_classes} were asked for; drop num_classes or use matching weights")
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read tensors ({exc}); the file is corrupt") from None
    try:
        model = HydraNet(config)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: the configuration in its metadata builds no network ({exc})") from None
    check_tensors(model, state, path)
    load_state_strict(model, state, path)
    return model.eval()


def check_tensors(model: HydraNet, state: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse weights that would load but compute nonsense: non-float or non-finite values."""
    expected = model.state_dict()
    for key, tensor in state.items():
        want = expected.get(key)
        if want is None or not want.is_floating_point():
            continue  # unknown keys and batch counters are load_state_strict's business
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path}: tensor {key} is {tensor.dtype}, not floating point; "
                                  "the file is damaged or not a hydranet model")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: tensor {key} holds NaN or infinite values; "
                                  "the weights are broken (a diverged training run?)")


def pack_weights(source: str | Path, out: str | Path, name: str | None = None,
                 dtype: torch.dtype | None = torch.float16) -> Path:
    """Re-save trained weights for shipping: smaller tensors, a new name, metadata kept."""
    source = Path(source)
    extra = json.loads(read_metadata(source).get("extra", "{}") or "{}")
    model = load_own(source)
    if name:
        model.config.name = name
    extra["packed_from"] = source.name
    return save_weights(model, out, extra, dtype=dtype)


def average_weights(sources: list[str | Path], out: str | Path, mix: list[float] | None = None,
                    name: str | None = None) -> Path:
    """Write the weighted average of fine-tuned copies of one network (a "model soup").

    Averaging a model with its own fine-tuned descendant (Wortsman et al., "Robust fine-tuning
    of zero-shot models", CVPR 2022) tends to keep the fine-tuning's gains while giving back
    less of what it forgot. Every floating-point tensor is averaged, batch-norm running
    statistics included; integer tensors (batch counters) come from the first source. ``mix``
    defaults to equal shares and is normalised to sum to one.
    """
    paths = [Path(p) for p in sources]
    if len(paths) < 2:
        raise CheckpointError("averaging needs at least two weights files")
    mix = [1.0] * len(paths) if mix is None else [float(m) for m in mix]
    if len(mix) != len(paths) or any(m < 0 for m in mix) or sum(mix) <= 0:
        raise CheckpointError(f"the mix (--mix) needs {len(paths)} non-negative shares, one per file, "
                              f"not {mix}")
    shares = [m / sum(mix) for m in mix]
    models = [load_own(p) for p in paths]
    first = models[0]
    for path, model in zip(paths[1:], models[1:]):
        # Names and data descriptions may differ; what the tensors mean may not.
        described = {"name": first.config.name, "training_data": first.config.training_data}
        if replace(model.config, **described) != first.config:
            raise CheckpointError(f"{path}: a different network from {paths[0]} (configurations "
                                  "differ); average only fine-tuned copies of one model")
    states = [m.state_dict() for m in models]
    averaged = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            averaged[key] = sum(s * state[key].double() for s, state in zip(shares, states)).to(value.dtype)
        else:
            averaged[key] = value
    first.load_state_dict(averaged)
    first.config.training_data = "; ".join(dict.fromkeys(m.config.training_data for m in models))
    if name:
        first.config.name = name
    extra = {"averaged_from": [str(p) for p in paths], "mix": shares,
             "sources": [json.loads(read_metadata(p).get("extra", "{}") or "{}") for p in paths]}
    return save_weights(first, out, extra)
