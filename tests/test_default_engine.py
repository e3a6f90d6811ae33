"""The default path is the fast one: engine and precision chosen by default, and the fallback line."""

import dataclasses

import numpy as np
import pytest

import hydranet
import hydranet.inference.predictor as predictor_module
from hydranet.checkpoints.registry import WEIGHTS
from hydranet.cli.main import main
from hydranet.inference.predictor import choose_engine

pytestmark = pytest.mark.usefixtures("one_thread")


def test_auto_picks_the_fastest_engine_and_the_weights_measured_precision(monkeypatch):
    monkeypatch.setattr(predictor_module, "default_backend", lambda: "openvino")
    assert choose_engine("some/file.safetensors") == ("openvino", "fp32", None)  # unmeasured: fp32
    # Measured within the limits (BENCHMARKS.md) on CPUs with and without VNNI: INT8.
    assert WEIGHTS["default"].fast_precision == ("int8",)
    for bf16 in (True, False):
        monkeypatch.setattr(predictor_module, "has_bf16", lambda: bf16)
        assert choose_engine("default") == ("openvino", "int8", None)
    # A bf16 entry is skipped on CPUs without bf16.
    monkeypatch.setitem(WEIGHTS, "default", dataclasses.replace(WEIGHTS["default"], fast_precision=("bf16", "int8")))
    assert choose_engine("default") == ("openvino", "int8", None)
    monkeypatch.setattr(predictor_module, "has_bf16", lambda: True)
    assert choose_engine("default") == ("openvino", "bf16", None)
    assert choose_engine("default", precision="fp32") == ("openvino", "fp32", None)
    assert choose_engine("default", backend="torch") == ("torch", None, None)
    # Other engines run unmeasured precisions in fp32.
    assert choose_engine("default", backend="onnxruntime") == ("onnxruntime", "fp32", None)
    with pytest.raises(hydranet.InputError, match="precision int8 needs an exporting engine"):
        choose_engine("default", backend="torch", precision="int8")
    with pytest.raises(hydranet.InputError, match="precision 'int4'"):
        choose_engine("default", precision="int4")


def test_a_missing_engine_falls_back_to_torch_with_one_line(monkeypatch, small_weights, tmp_path, capsys):
    monkeypatch.setattr(predictor_module, "default_backend", lambda: "torch")
    backend, precision, note = choose_engine("default")
    assert (backend, precision) == ("torch", None) and "pip install 'hydranet[openvino]'" in note
    image = np.full((40, 56, 3), 120, np.uint8)
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--weights", str(small_weights),
                 "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "OpenVINO is not installed" in notes[0]


def test_predict_without_options_runs_the_fast_engine(small_weights, tmp_path, capsys, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.setenv("HYDRANET_HOME", str(tmp_path / "home"))
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--weights", str(small_weights), "--out",
                 str(tmp_path / "out"), "--save", "raw"]) == 0
    out = capsys.readouterr().out
    assert "(openvino fp32)" in out  # unmeasured weights: the fast engine in fp32
    fast = np.load(tmp_path / "out" / "a_raw_depth.npy")
    exact = hydranet.Predictor(str(small_weights), backend="torch").predict(
        np.asarray(Image.open(tmp_path / "a.png"))).depth
    np.testing.assert_allclose(fast, exact, rtol=1e-4, atol=1e-4)
    assert any((tmp_path / "home" / "engines").rglob("*.xml"))  # kept for the next run
