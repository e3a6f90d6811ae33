"""Shared fixtures: the ../shared reference folder (skipped when absent) and small models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from predict_helpers import scene

import hydranet

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HYDRANET_SHARED", REPO.parent / "shared"))
PARITY = SHARED / "reference" / "official-parity"
CAMVID = SHARED / "data" / "camvid"
EXAMPLES = SHARED / "data" / "official-examples"


# CI sets HYDRANET_REQUIRE_SHARED=1 when ../shared is beside the clone: then a test that needs
# it must run, and a missing file is a failure (a wrong path), not a silent skip.
REQUIRE_SHARED = os.environ.get("HYDRANET_REQUIRE_SHARED") == "1"
SHARED_SKIP = "the reference data lives in ../shared beside the clone"


def _require(path: Path) -> Path:
    if not path.exists():
        message = f"{path} is absent ({SHARED_SKIP})"
        if REQUIRE_SHARED:
            pytest.fail(message + "; HYDRANET_REQUIRE_SHARED=1 says it must be there")
        pytest.skip(message)
    return path


def require_shared(path: Path) -> Path:
    """``path`` inside ../shared, or a skip (a failure under HYDRANET_REQUIRE_SHARED=1)."""
    return _require(path)


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = [r for r in (reporter.stats.get("skipped", []) if reporter else [])
               if "../shared" in str(r.longrepr)]
    if REQUIRE_SHARED and skipped:
        reporter.write_line(f"{len(skipped)} test(s) needing ../shared were skipped although "
                            "HYDRANET_REQUIRE_SHARED=1", red=True)
        session.exitstatus = 1


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


@pytest.fixture(scope="session")
def small_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random KITTI-6 model saved with ``save_weights`` (no ../shared needed).

    Random BatchNorm statistics (as in the parity checkpoint) make the labels vary across
    the image; the depth head is rescaled to about 20 +- 5 m so depth tests cover real metres.
    """
    torch.manual_seed(0)
    model = hydranet.create_model("kitti6").eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
        depth = model(hydranet.preprocess(scene()))["depth"]
        scale = 5.0 / float(depth.std())
        model.depth.weight.mul_(scale)
        model.depth.bias.copy_((model.depth.bias - float(depth.mean())) * scale + 20.0)
    return hydranet.save_weights(model, tmp_path_factory.mktemp("weights") / "small.safetensors")


@pytest.fixture(scope="module")
def one_thread():
    """Other jobs share the 2 cores; one intra-op thread is much faster than 2 under load."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def input_sizes(monkeypatch) -> list:
    """The ``(H, W)`` of every input the network's forward pass sees during the test."""
    shapes: list = []
    forward = hydranet.HydraNet.forward

    def recording(self, x):
        shapes.append(tuple(x.shape[-2:]))
        return forward(self, x)

    monkeypatch.setattr(hydranet.HydraNet, "forward", recording)
    return shapes
