"""The project's own weights format: safetensors with the model configuration in its metadata."""

from __future__ import annotations

import json
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
    with atomic_path(path) as tmp:
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
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid model configuration in metadata ({exc})") from None
    if num_classes is not None and num_classes != config.num_classes:
        raise CheckpointError(f"{path}: the weights have {config.num_classes} classes but "
                              f"{num_classes} were asked for; drop num_classes or use matching weights")
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read tensors ({exc}); the file is corrupt") from None
    model = HydraNet(config)
    load_state_strict(model, state, path)
    return model.eval()


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
