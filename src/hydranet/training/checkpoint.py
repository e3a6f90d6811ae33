"""Training-state checkpoints: plain tensors and primitives only, written atomically.

Loaded with ``torch.load(weights_only=True)``, so a checkpoint can never run code.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from ..fileio import atomic_path, remove_stale_temporaries, zip_problem


def capture_rng() -> dict[str, Any]:
    """Global RNG states of torch, numpy and Python as tensors / primitives."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"key": np_state[0], "pos_array": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]),
                   "gauss": py_state[2] if py_state[2] is None else float(py_state[2])},
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["key"], n["pos_array"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def save_state(path: str | Path, state: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    Temporary files of earlier saves killed before their rename are removed first, so they
    never pile up (a checkpoint is as big as the model and its optimiser).
    """
    path = Path(path)
    remove_stale_temporaries(path)
    with atomic_path(path, fsync=True) as tmp:
        torch.save(state, tmp)
    return path


def load_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no training checkpoint here; check --resume")
    problem = zip_problem(path)
    if problem is not None:
        raise CheckpointError(f"{path}: unreadable training checkpoint ({problem}); "
                              "resume from another one (last.pt is rewritten every epoch)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: unreadable training checkpoint ({msg}); "
                              "resume from another one (last.pt is rewritten every epoch)") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise CheckpointError(f"{path}: not a hydranet training checkpoint (no model/step)")
    return state
