"""Two CPU processes (torchrun, gloo) compute what one process computes with the same global batch.

BatchNorm statistics are global across ranks (DistributedBatchNorm2d). A randomly
initialised network is numerically chaotic (BatchNorm over a handful of values, huge
first gradients): even float32 against float64 in ONE process differs by ~20% in some
gradients. So the BN-training comparison runs in float64 over two steps, and the
float32 comparison uses frozen BatchNorm (the usual small-batch fine-tuning set-up)
over three steps that cross an epoch boundary.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from test_train import make_folder_dataset


def _config(tmp_path: Path, **extra) -> Path:
    data = make_folder_dataset(tmp_path / "data", n=8, size=(36, 40))
    cfg = {
        "seed": 1, "batch_size": 4, "threads": 1, "tensorboard": False, "log_every": 1,
        "model": {"factory": "hydranet", "num_classes": 3, "decoder_channels": 16},
        "data": {"train": [{"type": "folder", "root": str(data)}]},
        "augment": {"crop_size": [32, 32], "scale": [0.9, 1.1], "weather_p": 0.5},
        "loss": {"weighting": "uncertainty"},
    }
    cfg.update(extra)
    path = tmp_path / f"cfg_{len(list(tmp_path.glob('cfg_*')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(args, nproc: int) -> None:
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "hydranet", "train", *args]
    else:
        cmd = [sys.executable, "-m", "hydranet", "train", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def _compare(tmp_path: Path, config: Path, steps: int):
    one, two = tmp_path / f"one{steps}", tmp_path / f"two{steps}"
    _run(["--config", str(config), f"output={one}", f"steps={steps}"], 1)
    _run(["--config", str(config), f"output={two}", f"steps={steps}"], 2)
    a = torch.load(one / "last.pt", weights_only=True)
    b = torch.load(two / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == steps and b["world_size"] == 2
    la = list(csv.DictReader(open(one / "train.csv")))
    lb = list(csv.DictReader(open(two / "train.csv")))
    return a, b, la, lb


def test_two_processes_match_one_with_global_batchnorm_float64(tmp_path):
    a, b, la, lb = _compare(tmp_path, _config(tmp_path, float64=True), steps=2)
    for ra, rb in zip(la, lb):
        for key in ("loss_segmentation", "loss_depth", "weight_depth"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-7), key
    for key, value in a["model"].items():
        if value.is_floating_point():
            assert torch.allclose(value, b["model"][key], rtol=1e-4, atol=1e-4), key
    assert torch.allclose(a["weighting"]["log_vars"], b["weighting"]["log_vars"], atol=1e-10)


def test_two_processes_match_one_float32_frozen_batchnorm(tmp_path):
    a, b, la, lb = _compare(tmp_path, _config(tmp_path, freeze_bn=True), steps=3)
    assert [r["step"] for r in la] == [r["step"] for r in lb] == ["1", "2", "3"]
    for ra, rb in zip(la, lb):
        assert float(ra["loss_depth"]) == pytest.approx(float(rb["loss_depth"]), rel=1e-5)
    for key, value in a["model"].items():
        assert torch.allclose(value.double(), b["model"][key].double(), rtol=1e-4, atol=1e-5), key
