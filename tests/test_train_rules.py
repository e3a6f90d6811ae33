"""Training rules checked by their outcome: gradient accumulation is a larger batch, and
``best.safetensors`` holds the weights of the best validation (tiny models, CPU, float64)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train import tiny_config

from hydranet.checkpoints import load_model, read_metadata
from hydranet.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def _label_everything(root: Path) -> None:
    """Give every image of make_folder_dataset labels and depth (no pixel ignored)."""
    for image_path in sorted((root / "images").glob("*.png")):
        im = np.asarray(Image.open(image_path))
        Image.fromarray((im[..., 0] // 86).astype(np.uint8)).save(root / "labels" / image_path.name)
        Image.fromarray(im[..., 1].astype(np.uint16) * 20 + 256).save(root / "depth" / image_path.name)


def _one_step(cfg: dict, batch: int, accumulate: int, out: Path) -> tuple[dict, dict]:
    cfg = copy.deepcopy(cfg)
    cfg.update(batch_size=batch, accumulate=accumulate, output=str(out))
    trainer = Trainer(cfg, log=lambda m: None)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    assert trainer.step == 1
    return before, trainer.model.state_dict()


def _accumulation_config(tmp_path: Path, labelled: bool) -> dict:
    cfg = tiny_config(tmp_path, steps=1, float64=True, freeze_bn=True)
    if labelled:
        _label_everything(Path(cfg["data"]["train"][0]["root"]))
    # Batch-independent losses and statistics: fixed weights, L1 depth (berHu's threshold is
    # the batch's largest error) and frozen BatchNorm (a batch of 1 has other statistics).
    # Each sample's augmentation depends on (seed, epoch, index) only, not on the batching.
    cfg["loss"].update(weighting="fixed", depth="l1")
    return cfg


def _assert_same_update(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    (a0, a1), (b0, b1) = a, b
    changed = 0
    for key in a0:
        assert torch.equal(a0[key], b0[key]), key  # the same start
        if not a0[key].is_floating_point() or "running" in key:
            continue
        da, db = a1[key] - a0[key], b1[key] - b0[key]
        assert da.dtype == torch.float64
        torch.testing.assert_close(db, da, rtol=1e-9, atol=1e-15, msg=key)
        changed += bool(da.abs().max() > 0)
    assert changed > 50  # the step moved (nearly) every tensor, so equal updates are not zeros


def test_accumulating_two_batches_of_one_is_one_batch_of_two(tmp_path):
    cfg = _accumulation_config(tmp_path, labelled=True)
    big = _one_step(cfg, batch=2, accumulate=1, out=tmp_path / "big")
    accumulated = _one_step(cfg, batch=1, accumulate=2, out=tmp_path / "accumulated")
    _assert_same_update(big, accumulated)
    # and accumulating is not the same as stepping once per sample: a single batch of one
    # moves the weights differently.
    single = _one_step(cfg, batch=1, accumulate=1, out=tmp_path / "single")
    key = "segm.weight"
    assert not torch.allclose(single[1][key] - single[0][key], big[1][key] - big[0][key], rtol=1e-3)


def test_accumulation_with_asymmetric_labels_is_one_larger_batch(tmp_path):
    # Micro-batches with different numbers of labelled / depth pixels: each is normalised by
    # the whole step's count, so the one with more labels weighs more, as in one batch of 2.
    cfg = _accumulation_config(tmp_path, labelled=False)  # half the images labelled, 2/3 with depth
    _assert_same_update(_one_step(cfg, 2, 1, tmp_path / "big"), _one_step(cfg, 1, 2, tmp_path / "acc"))


def _validations(trainer: Trainer, results: list[dict]) -> list[dict]:
    """Replace validation by the given results, one per epoch; records the weights each time."""
    seen: list[dict] = []

    def validate():
        flat = dict(results[len(seen)], epoch=trainer.epoch, step=trainer.step)
        seen.append({"flat": flat, "weights": {k: v.clone() for k, v in trainer.model.state_dict().items()}})
        return flat

    trainer.validate = validate
    return seen


def _best_config(tmp_path: Path, epochs: int) -> dict:
    # 6 samples in batches of 6: one step per epoch, a validation after each.
    cfg = tiny_config(tmp_path, steps=epochs, batch_size=6)
    cfg["data"]["val"] = copy.deepcopy(cfg["data"]["train"])
    cfg["loss"]["weighting"] = "fixed"
    return cfg


def _best(out: Path) -> tuple[dict, dict]:
    meta = json.loads(read_metadata(out / "best.safetensors")["extra"])
    return meta, load_model(out / "best.safetensors").state_dict()


def test_best_weights_are_those_of_the_highest_miou(tmp_path):
    cfg = _best_config(tmp_path, epochs=4)
    trainer = Trainer(cfg, log=lambda m: None)
    # mIoU decides, not depth: epoch 2 has the best mIoU and the worst abs rel, epoch 3 the
    # reverse; epoch 4 only ties epoch 2, which does not replace it.
    seen = _validations(trainer, [{"miou": 0.30, "abs_rel": 0.50}, {"miou": 0.50, "abs_rel": 0.90},
                                  {"miou": 0.40, "abs_rel": 0.10}, {"miou": 0.50, "abs_rel": 0.20}])
    summary = trainer.fit()
    assert len(seen) == 4 and summary["best"] == 0.5
    meta, best = _best(Path(cfg["output"]))
    assert meta["step"] == 2 and meta["validation"]["miou"] == 0.5 and meta["validation"]["abs_rel"] == 0.9
    for key, value in seen[1]["weights"].items():
        assert torch.equal(best[key].to(value.dtype), value), key
    assert not torch.equal(best["segm.weight"], seen[3]["weights"]["segm.weight"])  # not the last
    assert json.loads(read_metadata(Path(cfg["output"]) / "last.safetensors")["extra"])["step"] == 4


def test_best_weights_of_a_depth_only_validation_have_the_lowest_abs_rel(tmp_path):
    cfg = _best_config(tmp_path, epochs=3)
    trainer = Trainer(cfg, log=lambda m: None)
    seen = _validations(trainer, [{"abs_rel": 0.30}, {"abs_rel": 0.20}, {"abs_rel": 0.25}])
    summary = trainer.fit()
    assert summary["best"] == pytest.approx(-0.20)  # the score is -abs_rel: higher is better
    meta, best = _best(Path(cfg["output"]))
    assert meta["step"] == 2 and meta["validation"]["abs_rel"] == 0.20
    assert torch.equal(best["depth.weight"], seen[1]["weights"]["depth.weight"])
