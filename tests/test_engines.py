"""Every installed engine against PyTorch on the user's paths, the per-size export cache,
an OpenVINO IR that is really run, and bf16 that is really bf16.

The fp32 and INT8 comparisons use the bundled default model (EfficientNet-Lite0, the
network the README's speed path runs) at a small size on rendered street frames, through
``Predictor`` and through ``hydranet predict`` as a user calls them (``--backend``,
``--weights FILE.onnx|.xml``).

Tolerances. fp32 engines reorder sums and fuse operations; on the bundled model their raw
outputs differ from PyTorch by ~2e-5 and the full-resolution depth by at most ~3e-6
relative (measured), so depth must agree to 1e-4 relative (plus 1e-4 m) and labels may
only differ where two logits tie to ~1e-5: at least 99.9% of the pixels. INT8 changes
results for real: the bounds are a few times its measured cost here (labels 98.2-98.9%
equal, median relative depth change 0.8-1.3%), and a lower bound on the depth change makes
a silent fp32 fallback fail.
"""

from __future__ import annotations

import copy
import io
import sys
from contextlib import redirect_stdout

import numpy as np
import pytest
import torch
from PIL import Image

from hydranet.checkpoints import bundled_path, load_model
from hydranet.cli.main import main
from hydranet.inference.predictor import Predictor
from hydranet.inference.raw import read_labels_png

SIZE = (96, 128)  # the network's input size in the tests on the default model
IMAGE = (120, 160)  # the pictures' size: results come back at it
SIZE_ARG = f"{SIZE[0]}x{SIZE[1]}"
NAMES = ("a", "b", "c")

# Other jobs share the 2 cores: PyTorch, ONNX Runtime and OpenVINO run one thread each here
# (two spinning thread pools on two busy cores are ~100x slower; results do not depend on it).
pytestmark = pytest.mark.usefixtures("one_thread", "one_engine_thread")


@pytest.fixture
def one_engine_thread(monkeypatch):
    import importlib

    for name in ("onnxruntime_backend", "openvino_backend"):
        try:
            module = importlib.import_module(f"hydranet.inference.backends.{name}")
        except ImportError:
            continue
        monkeypatch.setattr(module, "cpu_threads", lambda: 1)


def _needs(package: str) -> None:
    pytest.importorskip(package)


def tiny_model():
    """A small random HydraNet (3 classes, 16 decoder channels): fast to export and compile."""
    import hydranet

    torch.manual_seed(0)
    return hydranet.HydraNet(hydranet.ModelConfig(num_classes=3, decoder_channels=16)).eval()


@pytest.fixture(scope="module")
def default_model():
    if bundled_path("default") is None:
        pytest.skip("this installation has no bundled default weights")
    return load_model("default").eval()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Three street frames to predict on and four others to calibrate INT8 on, as PNG folders."""
    _needs("pybullet")
    from hydranet.data.synthetic import SceneRenderer, render_drive

    frames_dir, calib_dir = tmp_path_factory.mktemp("frames"), tmp_path_factory.mktemp("calibration")
    renderer = SceneRenderer()
    try:
        test = render_drive(1, ("clear",), len(NAMES), size=IMAGE, renderer=renderer)["clear"]
        calib = render_drive(2, ("clear",), 4, size=SIZE, renderer=renderer)["clear"]
    finally:
        renderer.close()
    images = {name: f["image"] for name, f in zip(NAMES, test)}
    for name, image in images.items():
        Image.fromarray(image).save(frames_dir / f"{name}.png")
    for i, f in enumerate(calib):
        Image.fromarray(f["image"]).save(calib_dir / f"{i}.png")
    return frames_dir, images, calib_dir


@pytest.fixture(scope="module")
def reference(default_model, rendered):
    """PyTorch's predictions per picture (the engine every other is checked against)."""
    predictor = Predictor(copy.deepcopy(default_model), backend="torch", size=SIZE)
    return {name: predictor.predict(image) for name, image in rendered[1].items()}


def predict_cli(frames_dir, out, *args) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """``hydranet predict FOLDER --size --save raw ...``: {name: (labels, depth)} read from the files."""
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = main(["predict", str(frames_dir), "--out", str(out), "--save", "raw", "--size", SIZE_ARG,
                     *map(str, args)])
    assert code == 0, buffer.getvalue()
    results = {}
    for name in NAMES:
        labels = read_labels_png(out / f"{name}_raw_labels.png")
        depth = np.load(out / f"{name}_raw_depth.npy")
        assert labels.shape == depth.shape == IMAGE
        results[name] = (labels, depth)
    return results, buffer.getvalue()


def predict_all(predictor: Predictor, images) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {name: (p.labels, p.depth) for name, p in ((n, predictor.predict(im)) for n, im in images.items())}


def assert_fp32_agreement(results, reference) -> None:
    for name, (labels, depth) in results.items():
        ref = reference[name]
        assert labels.shape == ref.labels.shape and depth.shape == ref.depth.shape
        assert (labels == ref.labels).mean() >= 0.999, name
        np.testing.assert_allclose(depth, ref.depth, rtol=1e-4, atol=1e-4, err_msg=name)


def assert_int8_close(results, reference) -> None:
    agree = np.mean([(labels == reference[n].labels).mean() for n, (labels, _) in results.items()])
    rel = np.concatenate([(np.abs(d - reference[n].depth) / reference[n].depth).ravel()
                          for n, (_, d) in results.items()])
    median, p90 = float(np.median(rel)), float(np.percentile(rel, 90))
    assert agree >= 0.96, agree
    assert 1e-4 < median <= 0.03, median  # fp32 would be ~5e-7
    assert p90 <= 0.08, p90


def _counting(monkeypatch, module, name):
    """Replace ``module.name`` (``export_onnx`` / ``convert_to_openvino``) by one recording each size."""
    import inspect

    calls: list = []
    real = getattr(module, name)
    signature = inspect.signature(real)

    def wrapper(*args, **kwargs):
        calls.append(signature.bind(*args, **kwargs).arguments.get("size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


# -- 1. fp32 engines: `hydranet predict --backend` and Predictor on exported files --------


@pytest.mark.parametrize("backend", ["onnxruntime", "auto"])
def test_predict_cli_backends_match_torch(backend, rendered, reference, tmp_path, monkeypatch):
    from hydranet.inference.backends import default_backend

    ran = default_backend() if backend == "auto" else backend
    if ran == "torch":
        pytest.skip("no optional engine installed: auto is torch")
    _needs(ran)
    module_name, function = {"onnxruntime": ("onnxruntime_backend", "export_onnx"),
                             "openvino": ("openvino_backend", "convert_to_openvino")}[ran]
    import importlib

    calls = _counting(monkeypatch, importlib.import_module(f"hydranet.inference.backends.{module_name}"),
                      function)
    # fp32 asked for: the engine's agreement with PyTorch (the default precision is tested in
    # test_default_engine.py).
    results, stdout = predict_cli(rendered[0], tmp_path / "out", "--backend", backend, "--precision", "fp32")
    assert f"ms/frame ({ran} fp32" in stdout  # `auto` ran the fastest installed engine
    assert_fp32_agreement(results, reference)
    # The network was exported once, with a dynamic size, and that export served all three pictures.
    assert calls == [None]


@pytest.mark.parametrize("fmt, suffix, runtime", [("onnx", ".onnx", "onnxruntime"),
                                                  ("openvino", ".xml", "openvino")])
def test_exported_file_as_weights_matches_torch(fmt, suffix, runtime, rendered, reference, tmp_path):
    _needs(runtime)
    path = tmp_path / f"default{suffix}"
    assert main(["export", "--weights", "default", "--format", fmt, "--size", SIZE_ARG, "--out", str(path),
                 "--check-images", "0"]) == 0
    # Predictor on the file: no PyTorch model, the file's own runtime.
    predictor = Predictor(path, size=SIZE)
    assert predictor.model is None and predictor.backend_name == runtime
    assert predictor.backend.fixed_size == SIZE
    assert_fp32_agreement(predict_all(predictor, rendered[1]), reference)
    # `hydranet predict --weights FILE` (the default --backend auto means "the file's runtime").
    results, stdout = predict_cli(rendered[0], tmp_path / "out", "--weights", path)
    assert f"ms/frame ({runtime} fp32" in stdout
    assert_fp32_agreement(results, reference)


# -- 1. INT8: the README's speed path (export, then predict on the file), and Predictor ----


def test_openvino_int8_export_then_predict_stays_close_to_fp32(rendered, reference, tmp_path):
    _needs("openvino")
    _needs("nncf")
    from hydranet.export import read_openvino

    path = tmp_path / "default-int8.xml"
    assert main(["export", "--weights", "default", "--format", "openvino", "--precision", "int8",
                 "--calibration", str(rendered[2]), "--size", SIZE_ARG, "--out", str(path),
                 "--check-images", "0"]) == 0
    assert read_openvino(path)[2] == "int8"
    results, stdout = predict_cli(rendered[0], tmp_path / "out", "--weights", path)
    assert "ms/frame (openvino int8" in stdout
    assert_int8_close(results, reference)  # measured: 98.2% labels, median 1.3% depth change


def test_onnxruntime_int8_predictor_stays_close_to_fp32(default_model, rendered, reference):
    _needs("onnxruntime")
    predictor = Predictor(copy.deepcopy(default_model), backend="onnxruntime", precision="int8",
                          calibration=str(rendered[2]), size=SIZE)
    assert predictor.backend.precision == "int8"
    assert_int8_close(predict_all(predictor, rendered[1]), reference)  # measured: 98.9%, 0.8%


# -- 2. the per-size export cache --------------------------------------------------------


def test_a_size_specific_network_is_exported_once_per_size(monkeypatch):
    _needs("onnxruntime")
    from hydranet.export.check import torch_outputs
    from hydranet.inference.backends import create_backend
    from hydranet.inference.backends import onnxruntime_backend as module
    from hydranet import create_model

    calls = _counting(monkeypatch, module, "export_onnx")
    torch.manual_seed(0)
    from hydranet.model.efficientnet import SameConv2d

    model = create_model("camvid11_lite0").eval()
    for m in model.modules():  # SAME padding from Python ints: a graph that holds at one size only
        if isinstance(m, SameConv2d):
            m._traceable = False
    backend = create_backend("onnxruntime", model, threads=1)
    assert calls == [None]  # the dynamic export it refuses; nothing per size before a size is seen
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, 3, 32, 48)).astype(np.float32)
    first = backend(a)
    assert calls == [None, (32, 48)]
    path = backend._graphs.get((32, 48))
    stamp = path.stat().st_mtime_ns
    # The same size again, and another batch size: the same file, not exported again.
    np.testing.assert_array_equal(backend(a)["depth"], first["depth"])
    backend(np.concatenate([a, a]))
    assert calls == [None, (32, 48)] and path.stat().st_mtime_ns == stamp
    # Another size is another export, right at that size (the padding differs).
    b = rng.standard_normal((1, 3, 40, 56)).astype(np.float32)
    out = backend(b)
    assert calls == [None, (32, 48), (40, 56)] and backend._graphs.get((40, 56)) != path
    np.testing.assert_allclose(out["depth"], torch_outputs(model, b)["depth"], atol=1e-4)
    backend(a)
    assert len(calls) == 3 and path.stat().st_mtime_ns == stamp


def test_a_dynamic_network_is_exported_once_for_every_size(monkeypatch):
    _needs("onnxruntime")
    from hydranet.export.check import torch_outputs
    from hydranet.inference.backends import create_backend
    from hydranet.inference.backends import onnxruntime_backend as module

    calls = _counting(monkeypatch, module, "export_onnx")
    model = tiny_model()
    backend = create_backend("onnxruntime", model, threads=1)
    for shape in [(1, 3, 32, 48), (1, 3, 40, 56), (2, 3, 32, 48)]:
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(backend(x)["depth"], torch_outputs(model, x)["depth"], atol=1e-4)
    assert calls == [None]


# -- 3. an OpenVINO IR that is run --------------------------------------------------------


def test_openvino_ir_round_trip_runs_the_ir(tmp_path):
    _needs("openvino")
    import openvino as ov

    from hydranet.export import export_openvino
    from hydranet.export.check import torch_outputs

    model = tiny_model()
    path = export_openvino(model, tmp_path / "m.xml", precision="fp32")
    # Read and run the files with OpenVINO alone (f32 asked for explicitly: on CPUs with
    # AMX / AVX512_BF16 the plugin's default is bf16).
    compiled = ov.Core().compile_model(ov.Core().read_model(str(path)), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    names = [port.get_any_name() for port in compiled.outputs]
    assert names == ["segmentation", "depth"]
    for shape in [(1, 3, 64, 96), (2, 3, 50, 74)]:  # dynamic height and width
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        result = compiled(x)
        ref = torch_outputs(model, x)
        for i, name in enumerate(names):
            out = np.asarray(result[compiled.outputs[i]])
            assert out.shape == ref[name].shape
            np.testing.assert_allclose(out, ref[name], atol=1e-4, rtol=0)


# -- 4. bf16 that is bf16 ------------------------------------------------------------------


def _require_bf16_cpu() -> None:
    from hydranet.export.cpu import cpu_flags

    if not {"avx512_bf16", "amx_bf16"} & cpu_flags():
        pytest.skip("this CPU has no bf16 instructions (AVX512_BF16 / AMX): OpenVINO runs bf16 as f32")


def test_exported_bf16_ir_runs_in_bf16(tmp_path):
    _needs("openvino")
    _require_bf16_cpu()
    from hydranet.export import export_openvino
    from hydranet.export.check import torch_outputs

    model = tiny_model()
    path = export_openvino(model, tmp_path / "m16.xml", precision="bf16")
    predictor = Predictor(path)
    assert predictor.backend.precision == "bf16"
    x = np.random.default_rng(2).standard_normal((1, 3, 64, 96)).astype(np.float32)
    assert predictor.backend.effective_precision(x.shape) == "bf16"
    out, ref = predictor.infer(x), torch_outputs(model, x)
    scale = np.abs(ref["segmentation"]).max()
    err = np.abs(out["segmentation"] - ref["segmentation"]).max() / scale
    # bf16 keeps 8 mantissa bits: errors of ~1e-2 of the logits' range, which f32 (~1e-6) never makes.
    assert 1e-3 < err < 0.1


def test_dynamic_export_check_without_onnxruntime_is_f32(monkeypatch, tmp_path):
    # An installation with OpenVINO only checks a dynamic export with OpenVINO. Its CPU
    # plugin defaults to bf16 on AMX / AVX512_BF16 CPUs, whose errors (~1e-2 of the
    # outputs) once made every dynamic network look size-specific there, and refused it.
    _needs("openvino")
    from test_backends import random_model

    from hydranet.export import export_onnx, read_onnx_metadata

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    path = export_onnx(random_model(), tmp_path / "dynamic.onnx")
    assert read_onnx_metadata(path)["hydranet.input_size"] == "dynamic"
