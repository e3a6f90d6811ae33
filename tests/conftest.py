"""Shared fixtures: the ../shared reference folder (skipped when absent) and small models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HYDRANET_SHARED", REPO.parent / "shared"))
PARITY = SHARED / "reference" / "official-parity"
CAMVID = SHARED / "data" / "camvid"
EXAMPLES = SHARED / "data" / "official-examples"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the reference data lives in ../shared beside the clone)")
    return path


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    return _require(PARITY)


@pytest.fixture(scope="session")
def parity_ckpt(parity_dir: Path) -> Path:
    return _require(parity_dir / "kitti_joint_random_seed0.ckpt")


@pytest.fixture(scope="session")
def camvid_dir() -> Path:
    return _require(CAMVID)


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return _require(EXAMPLES)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's real weights cache."""
    monkeypatch.setenv("HYDRANET_HOME", str(tmp_path_factory.mktemp("hydranet_home")))
    monkeypatch.delenv("HYDRANET_WEIGHTS_URL", raising=False)
