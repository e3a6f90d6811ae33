"""Reading the authors' released checkpoints (GitHub DrSleep/multi-task-refinenet, ``weights/``).

Their format is ``torch.save({'state_dict': state_dict})``; some files were saved
from ``nn.DataParallel`` (``module.`` prefix) or before BatchNorm tracked
``num_batches_tracked``. Files are only ever unpickled with ``weights_only=True``.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from ..errors import CheckpointError
from ..fileio import zip_problem
from ..labels import KITTI6, NYUD40, NYUD_KITTI46, generic_label_set
from ..model import HydraNet, ModelConfig

_TORCH_MAGIC_ZIP = b"PK"
_TORCH_MAGIC_LEGACY = b"\x80"


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Load a released checkpoint's tensors safely, with the ``module.`` prefix removed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; check the path or run `hydranet weights download NAME`")
    with path.open("rb") as f:
        head = f.read(2)
    if not head.startswith((_TORCH_MAGIC_ZIP, _TORCH_MAGIC_LEGACY)):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (unrecognised file header); "
                              "pass a released .ckpt or a hydranet .safetensors file")
    # torch.load does not check the zip members' CRCs: a flipped byte would load as a wrong weight.
    problem = zip_problem(path) if head.startswith(_TORCH_MAGIC_ZIP) else None
    if problem is not None:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({problem}); "
                              "download it again (`hydranet weights download NAME`)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # PyTorch's own message advises weights_only=False, which would run the file's code:
        # name only what it wanted.
        found = re.search(r"Unsupported (global: GLOBAL [\w.]+|operand \d+|class [\w.]+)", str(exc))
        what = found.group(0) if found else "objects other than tensors"
        raise CheckpointError(f"{path}: refused, the file needs code to unpickle ({what}); "
                              "only plain tensor checkpoints are loaded, never arbitrary pickles") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({msg}); "
                              "download it again (`hydranet weights download NAME`)") from None
    if isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()
    ):
        raise CheckpointError(f"{path}: not a checkpoint: expected a state dict of tensors "
                              "(optionally under 'state_dict')")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def infer_config(state: Mapping[str, Tensor], path: str | Path = "checkpoint") -> ModelConfig:
    """The configuration a released state dict was trained with, from its tensor shapes."""
    if "segm.weight" not in state:
        raise CheckpointError(f"{path}: missing key 'segm.weight': not a HydraNet checkpoint "
                              "(expected the keys of DrSleep/multi-task-refinenet)")
    num_classes = int(state["segm.weight"].shape[0])
    tasks = ["segmentation"]
    if "depth.weight" in state:
        tasks.append("depth")
    if "normal.weight" in state:
        tasks.append("normals")
    known = {6: KITTI6, 40: NYUD40, 46: NYUD_KITTI46}
    label_set = known.get(num_classes, generic_label_set(num_classes))
    three = "normals" in tasks
    name = {6: "kitti6", 40: "nyud40_three" if three else "nyud40", 46: "nyud_kitti46"}.get(num_classes, "")
    depth_range = (0.0, 10.0) if num_classes == 40 else (0.0, 80.0)
    return ModelConfig(
        num_classes=num_classes,
        tasks=tuple(tasks),
        label_set=label_set.name if num_classes in known else None,
        class_names=list(label_set.class_names),
        palette=[list(c) for c in label_set.palette],
        depth_range=depth_range,
        name=name,
        training_data="released checkpoint of Nekrasov et al. 2019" if name else "",
    )


def load_state_strict(model: HydraNet, state: Mapping[str, Tensor], path: str | Path) -> None:
    """Copy ``state`` into ``model`` with strict key and shape checks, naming the file on failure."""
    state = dict(state)
    expected = model.state_dict()
    # Checkpoints from before PyTorch 0.4.1 have no BatchNorm step counters; they do not affect eval.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError(f"{path}: {'; '.join(parts)}: the file does not match this "
                              "network's architecture")
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{path}: tensor {key!r} has shape {tuple(state[key].shape)}, "
                                  f"the network expects {tuple(value.shape)}")
    model.load_state_dict(state, strict=True)


def load_official(path: str | Path, num_classes: int | None = None) -> HydraNet:
    """Build the network a released checkpoint describes and load its weights."""
    state = read_state_dict(path)
    config = infer_config(state, path)
    if num_classes is not None and num_classes != config.num_classes:
        raise CheckpointError(f"{path}: the checkpoint has {config.num_classes} classes but "
                              f"{num_classes} were asked for; drop num_classes or use matching weights")
    model = HydraNet(config)
    load_state_strict(model, state, path)
    return model.eval()
