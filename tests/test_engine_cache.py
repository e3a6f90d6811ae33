"""The disk cache of converted engine graphs: reused, invalidated by weights / engine / CPU, optional."""

import numpy as np
import pytest
import torch

pytest.importorskip("openvino")

import hydranet.inference.backends.openvino_backend as ovb  # noqa: E402
from hydranet.export import cache  # noqa: E402
from hydranet.inference.backends import create_backend  # noqa: E402
from hydranet.model.factory import create_model  # noqa: E402


@pytest.fixture
def conversions(monkeypatch, tmp_path):
    """Count the conversions through ONNX; the cache lives in ``tmp_path``."""
    monkeypatch.setenv("HYDRANET_HOME", str(tmp_path))
    monkeypatch.delenv("HYDRANET_ENGINE_CACHE", raising=False)
    calls: list = []
    real = ovb.convert_to_openvino

    def counted(model, size=None):
        calls.append(size)
        return real(model, size)

    monkeypatch.setattr(ovb, "convert_to_openvino", counted)
    return calls


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("kitti6").eval()


def _entries(tmp_path):
    return sorted(p.name for p in (tmp_path / "engines").rglob("*.xml"))


X = np.random.default_rng(0).random((1, 3, 64, 96), dtype=np.float32)


def test_second_backend_reuses_the_converted_graph(conversions, tmp_path):
    model = _model()
    first = create_backend("openvino", model)(X)
    assert conversions == [None] and len(_entries(tmp_path)) == 1
    second = create_backend("openvino", model)(X)
    assert conversions == [None]  # read from disk, not converted again
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    with torch.no_grad():
        ref = model(torch.from_numpy(X))
    # The cached IR keeps fp32 weights: still within the engines' 1e-4 agreement.
    assert np.abs(second["depth"] - ref["depth"].numpy()).max() < 1e-4


def test_changed_weights_engine_or_cpu_make_a_new_entry(conversions, tmp_path, monkeypatch):
    model = _model()
    create_backend("openvino", model)
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    out = create_backend("openvino", model)(X)
    assert len(conversions) == 2 and len(_entries(tmp_path)) == 2
    with torch.no_grad():
        ref = model(torch.from_numpy(X))
    assert np.abs(out["depth"] - ref["depth"].numpy()).max() < 1e-4  # the new weights, not the old
    monkeypatch.setattr(ovb.ov, "get_version", lambda: "9999.0.0-test")
    create_backend("openvino", model)
    assert len(conversions) == 3
    monkeypatch.setattr(cache, "cpu_flags", lambda: frozenset({"a-cpu-unlike-this-one"}))
    create_backend("openvino", model)
    assert len(conversions) == 4 and len(_entries(tmp_path)) == 4


def test_damaged_entry_is_made_again_and_cache_can_be_off(conversions, tmp_path, monkeypatch):
    model = _model()
    create_backend("openvino", model)
    (bin_file,) = (tmp_path / "engines").rglob("*.bin")
    bin_file.write_bytes(b"")  # truncated by a full disk, say
    out = create_backend("openvino", model)(X)
    assert len(conversions) == 2 and bin_file.stat().st_size > 0
    with torch.no_grad():
        assert np.abs(out["depth"] - model(torch.from_numpy(X))["depth"].numpy()).max() < 1e-4
    monkeypatch.setenv("HYDRANET_ENGINE_CACHE", "0")
    other = _model(seed=1)
    create_backend("openvino", other)
    assert len(conversions) == 3 and len(_entries(tmp_path)) == 1


def test_model_digest_sees_every_tensor_and_the_config():
    a, b = _model(), _model()
    assert cache.model_digest(a) == cache.model_digest(b)
    with torch.no_grad():
        dict(b.named_buffers())[next(n for n, _ in b.named_buffers() if n.endswith("running_mean"))].add_(1.0)
    assert cache.model_digest(a) != cache.model_digest(b)
    c = _model()
    c.config.depth_range = (0.0, 10.0)
    assert cache.model_digest(a) != cache.model_digest(c)
