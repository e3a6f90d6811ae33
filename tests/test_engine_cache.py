"""The disk cache of converted engine graphs: reused, invalidated by weights / engine / CPU, optional."""

import os

import numpy as np
import pytest
import torch

pytest.importorskip("openvino")

import hydranet.inference.backends.openvino_backend as ovb  # noqa: E402
from hydranet.export import cache  # noqa: E402
from hydranet.inference.backends import create_backend  # noqa: E402
from hydranet import create_model  # noqa: E402


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


def _fake_entry(root, model: str, name: str, size: int, used: float):
    folder = root / "engines" / model
    folder.mkdir(parents=True, exist_ok=True)
    xml, bin_file = folder / f"{name}.xml", folder / f"{name}.bin"
    xml.write_bytes(b"x" * 100)
    bin_file.write_bytes(b"b" * (size - 100))
    for f in (xml, bin_file):
        os.utime(f, (used, used))
    return xml


def test_prune_removes_the_least_recently_used_first(tmp_path, monkeypatch):
    monkeypatch.setenv("HYDRANET_HOME", str(tmp_path))
    monkeypatch.delenv("HYDRANET_ENGINE_CACHE", raising=False)
    old = _fake_entry(tmp_path, "m1", "old", 1000, 1_000)
    kept = _fake_entry(tmp_path, "m2", "kept", 1000, 2_000)
    mid = _fake_entry(tmp_path, "m2", "mid", 1000, 3_000)
    new = _fake_entry(tmp_path, "m3", "new", 1000, 4_000)
    assert [e.files[0] for e in cache.entries()] == [old, kept, mid, new]
    assert sum(e.size for e in cache.entries()) == 4000
    removed = cache.prune(limit=2000, keep=kept)
    # "old" goes first; "kept" is spared although older than "mid", which goes next.
    assert [e.files[0] for e in removed] == [old, mid]
    assert [e.files[0] for e in cache.entries()] == [kept, new]
    assert not (tmp_path / "engines" / "m1").exists()  # an empty model folder goes too
    assert not mid.with_suffix(".bin").exists()
    cache.mark_used(kept)
    assert [e.files[0] for e in cache.entries()] == [new, kept]
    assert cache.prune(limit=0) and cache.entries() == []


def test_reading_marks_an_entry_used_and_writing_keeps_the_limit(conversions, tmp_path, monkeypatch):
    model = _model()
    create_backend("openvino", model)
    (xml,) = (tmp_path / "engines").rglob("*.xml")
    os.utime(xml, (1_000, 1_000))
    os.utime(xml.with_suffix(".bin"), (1_000, 1_000))
    create_backend("openvino", model)
    assert conversions == [None] and xml.stat().st_mtime > 1_000
    # A limit below one entry: writing another keeps only the newest.
    monkeypatch.setenv("HYDRANET_ENGINE_CACHE_MB", "0.001")
    create_backend("openvino", _model(seed=1))
    assert len(conversions) == 2
    (only,) = (tmp_path / "engines").rglob("*.xml")
    assert only != xml and not xml.exists()


def test_cache_command_shows_and_clears(tmp_path, monkeypatch, capsys):
    from hydranet.cli.main import main

    monkeypatch.setenv("HYDRANET_HOME", str(tmp_path))
    monkeypatch.delenv("HYDRANET_ENGINE_CACHE", raising=False)
    _fake_entry(tmp_path, "m1", "a", 3 * 1024 * 1024, 1_000)
    _fake_entry(tmp_path, "m2", "b", 1024 * 1024, 2_000)
    assert main(["cache"]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'engines'}: 2 graph(s), 4.0 MB (limit 1024.0 MB)"
    monkeypatch.setenv("HYDRANET_ENGINE_CACHE_MB", "2")
    assert main(["cache", "--prune"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "removed 1 graph(s), 3.0 MB"
    assert main(["cache", "--clear"]) == 0
    assert "1 graph(s), 1.0 MB" in capsys.readouterr().out and cache.entries() == []
    monkeypatch.setenv("HYDRANET_ENGINE_CACHE_MB", "lots")
    assert main(["cache"]) == 2
    assert "HYDRANET_ENGINE_CACHE_MB='lots': give the cache's size limit in MB" in capsys.readouterr().err
