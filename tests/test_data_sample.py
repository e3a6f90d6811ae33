"""The sample protocol: collation fills missing targets with ignore / zero and flags them."""

import numpy as np
import pytest
import torch

from hydranet.data import preprocess
from hydranet.data.sample import collate, validate_sample
from hydranet.errors import InputError


def test_collate_mixes_samples_with_and_without_targets():
    im = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    seg = np.arange(48, dtype=np.uint8).reshape(6, 8) % 5
    depth = np.linspace(0, 10, 48, dtype=np.float32).reshape(6, 8)
    batch = collate([
        {"image": im, "segmentation": seg, "name": "a"},
        {"image": im, "depth": depth, "name": "b"},
        {"image": im, "segmentation": None, "name": "c"},
    ])
    assert batch["image"].shape == (3, 3, 6, 8) and batch["image"].dtype == torch.float32
    assert torch.equal(batch["image"][0], preprocess(im)[0])
    assert batch["segmentation"].dtype == torch.int64
    assert torch.equal(batch["segmentation"][0], torch.from_numpy(seg.astype(np.int64)))
    assert (batch["segmentation"][1:] == 255).all()
    assert batch["depth"].shape == (3, 1, 6, 8)
    assert torch.equal(batch["depth"][1, 0], torch.from_numpy(depth))
    assert (batch["depth"][[0, 2]] == 0).all()
    assert batch["has_segmentation"].tolist() == [True, False, False]
    assert batch["has_depth"].tolist() == [False, True, False]
    assert batch["name"] == ["a", "b", "c"]


def test_collate_rejects_mixed_sizes_and_validate_names_sample():
    a = {"image": np.zeros((4, 4, 3), np.uint8)}
    b = {"image": np.zeros((5, 4, 3), np.uint8)}
    with pytest.raises(InputError, match="crop_size"):
        collate([a, b])
    with pytest.raises(InputError, match="x1: 'segmentation'"):
        validate_sample({"image": a["image"], "segmentation": np.zeros((3, 4)), "name": "x1"})
