"""Mixing datasets in one run: label remapping to one class list and concatenation with repeats."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from torch.utils.data import Dataset

from ...errors import InputError
from ...labels import LabelSet, get_label_set

# Different datasets' names for the same thing (source name -> target name).
SYNONYMS: dict[str, str] = {
    "pavement": "sidewalk", "tree": "vegetation", "signsymbol": "traffic sign", "sign": "traffic sign",
    "bicyclist": "rider", "pedestrian": "person", "kitti sky": "sky", "kitti building": "building",
    "kitti road": "road", "kitti sidewalk": "sidewalk", "kitti vegetation": "vegetation", "kitti car": "car",
}


def _norm(name: str) -> str:
    return name.strip().lower()


def remap_by_name(source: LabelSet | str, target: LabelSet | str) -> dict[int, int]:
    """Map each source class to the target class of the same name (or a known synonym).

    Source classes without a counterpart are absent from the map, hence ignored (255).
    """
    src = get_label_set(source) if isinstance(source, str) else source
    dst = get_label_set(target) if isinstance(target, str) else target
    index = {_norm(n): i for i, n in enumerate(dst.class_names)}
    mapping = {}
    reverse: dict[str, list[str]] = {}
    for a, b in SYNONYMS.items():
        reverse.setdefault(b, []).append(a)
    for i, name in enumerate(src.class_names):
        n = _norm(name)
        for candidate in (n, SYNONYMS.get(n), *reverse.get(n, [])):
            if candidate is not None and candidate in index:
                mapping[i] = index[candidate]
                break
    if not mapping:
        raise InputError(f"label sets {src.name} and {dst.name} share no class names; give an explicit remap")
    return mapping


def parse_remap(remap: Any, source: str | None, target: str | None) -> dict[int, int] | None:
    """A remap from config: None, ``"by_name"`` or a ``{source_id: target_id}`` mapping."""
    if remap is None or remap is False:
        return None
    if remap == "by_name":
        if not source or not target:
            raise InputError("remap: by_name needs the dataset's label set and the model's label_set")
        return remap_by_name(source, target)
    if isinstance(remap, Mapping):
        try:
            return {int(k): int(v) for k, v in remap.items()}
        except (TypeError, ValueError):
            raise InputError(f"remap must map integer ids to integer ids, got {dict(remap)}") from None
    raise InputError(f"remap must be 'by_name' or a mapping of ids, got {remap!r}")


class MixedDataset(Dataset):
    """Several datasets as one; ``repeats[i]`` lists dataset ``i`` that many times per epoch."""

    def __init__(self, datasets: Sequence[Dataset], repeats: Sequence[int] | None = None) -> None:
        if not datasets:
            raise InputError("no datasets to mix")
        self.datasets = list(datasets)
        self.repeats = [int(r) for r in (repeats or [1] * len(self.datasets))]
        self.offsets = []
        total = 0
        for d, r in zip(self.datasets, self.repeats):
            self.offsets.append(total)
            total += len(d) * r  # type: ignore[arg-type]
        self.total = total

    def __len__(self) -> int:
        return self.total

    def locate(self, index: int) -> tuple[int, int]:
        """(dataset number, index inside it) of a global index."""
        k = bisect.bisect_right(self.offsets, index) - 1
        return k, (index - self.offsets[k]) % len(self.datasets[k])  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        k, i = self.locate(index)
        return self.datasets[k][i]


class TargetFilter(Dataset):
    """Any protocol dataset with only some targets kept and its labels remapped (e.g. synthetic data)."""

    def __init__(self, dataset: Any, targets: Sequence[str] | None = None,
                 remap: Mapping[int, int] | None = None) -> None:
        from .base import remap_lut

        self.dataset = dataset
        self.targets = tuple(targets) if targets is not None else ("segmentation", "depth")
        self.lut = remap_lut(dict(remap)) if remap is not None else None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import numpy as np

        sample = dict(self.dataset[index])
        for key in ("segmentation", "depth"):
            if key not in self.targets:
                sample.pop(key, None)
        seg = sample.get("segmentation")
        if seg is not None and self.lut is not None:
            seg = np.asarray(seg).astype(np.int64)
            sample["segmentation"] = self.lut[np.clip(seg, 0, len(self.lut) - 1)].astype(np.uint8)
        return sample
