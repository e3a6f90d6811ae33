"""``load_model``: one entry point for released checkpoints, own weights and registered names;
``create_model``: an architecture by name, random or with trained weights."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import CheckpointError, WeightsNotFoundError
from ..model import HydraNet, build_model, model_config
from .official import load_official
from .own import load_own
from .registry import RELEASED, WEIGHTS, weights_for_architecture
from .released import cache_dir, cached_path


def bundled_path(name: str) -> Path | None:
    """Path of a bundled weights file, or None when this installation does not ship it."""
    entry = WEIGHTS.get(name)
    if entry is None or entry.source != "bundled":
        return None
    path = Path(str(resources.files("hydranet") / "weights" / entry.filename))
    return path if path.is_file() else None


def registered_names() -> list[str]:
    """Names ``load_model`` accepts besides paths."""
    return list(WEIGHTS)


def resolve_weights(source: str | Path) -> Path:
    """The file behind a path or a registered name, with a message saying how to get it if absent."""
    path = Path(source)
    if path.exists():
        return path
    name = str(source)
    entry = WEIGHTS.get(name)
    if entry is not None and entry.source == "bundled":
        found = bundled_path(name)
        if found is None:
            raise WeightsNotFoundError(f"{name}: weights are not bundled with this installation "
                                       "(reinstall hydranet from a full source tree)")
        return found
    if entry is not None and entry.source == "released":
        cached = cached_path(name)
        if not cached.is_file():
            raise WeightsNotFoundError(f"{name}: released weights not in the cache ({cache_dir()}); "
                                       f"run `hydranet weights download {name}` first")
        # Verified at every load, not only after the download: hashing 12 MB costs ~20 ms.
        from .download import git_blob_id

        registered = RELEASED[name] if name in RELEASED else entry
        if git_blob_id(cached) != registered.git_blob_id:
            raise CheckpointError(f"{cached}: not the released {name} checkpoint (its git blob id differs); "
                                  f"run `hydranet weights download {name} --force` to replace it")
        return cached
    if path.suffix or "/" in name or "\\" in name:
        raise CheckpointError(f"{source}: no such file; check the path")
    raise WeightsNotFoundError(f"{name}: unknown weights name; pass a file path or one of "
                               f"{', '.join(registered_names())}")


def load_model(source: str | Path, num_classes: int | None = None, device: str = "cpu") -> HydraNet:
    """Load a model in eval mode from a released ``.ckpt``, a ``.safetensors`` file or a name.

    Names: ``default`` (bundled), and ``kitti6``, ``nyud40``, ``nyud_kitti46``,
    ``nyud40_three`` (the authors' releases, once downloaded). ``num_classes``,
    when given, must match the weights.
    """
    path = resolve_weights(source)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; pass a weights file")
    with path.open("rb") as f:
        head = f.read(16)
    # safetensors starts with an 8-byte little-endian header size, then '{'.
    if path.suffix == ".safetensors" or head[8:9] == b"{":
        model = load_own(path, num_classes=num_classes)
    else:
        model = load_official(path, num_classes=num_classes)
    return model.to(device).eval()


def create_model(name: str, weights: str | Path | bool | None = None) -> HydraNet:
    """A network of architecture ``name``: random, or with trained ``weights``.

    ``weights``: None (random initialisation), True (the weights registered for this
    architecture, e.g. the authors' release for ``kitti6``), a registered weights name or a
    file. Loaded weights must be of this architecture's classes, tasks and encoder.
    """
    config = model_config(name)
    if weights is None or weights is False:
        return build_model(name)
    source = weights_for_architecture(name) if weights is True else weights
    model = load_model(source)
    got = model.config
    mismatch = [key for key in ("num_classes", "tasks", "encoder", "decoder_channels")
                if getattr(got, key) != getattr(config, key)]
    if mismatch:
        raise CheckpointError(f"{source}: not weights of architecture {name} (different "
                              f"{', '.join(mismatch)}); pass create_model(name) the architecture of those weights")
    return model
