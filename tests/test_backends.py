"""ONNX Runtime and OpenVINO backends against PyTorch, INT8 and bf16, the registry and its messages."""

from __future__ import annotations

import sys
from unittest import mock

import numpy as np
import pytest
import torch

from hydranet.errors import HydranetError
from hydranet.export.calibration import generated_images, to_batches
from hydranet.export.check import check_against_torch, torch_outputs
from hydranet.inference import backends
from hydranet.inference.backends import (
    BackendUnavailableError,
    TorchBackend,
    available_backends,
    create_backend,
    default_backend,
)
from hydranet import create_model

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

SIZE = (64, 96)


def random_model():
    """KITTI-6 with seeded random weights and BatchNorm statistics (so every BN term matters).

    Convolutions ~ N(0, 1/fan_in) as in the parity checkpoint, so activations keep their
    scale through the network and the logits separate the classes.
    """
    torch.manual_seed(0)
    model = create_model("kitti6")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0, fan_in ** -0.5)
                if module.bias is not None:
                    module.bias.normal_(0, 0.1)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return random_model()


@pytest.fixture(scope="module")
def images():
    return to_batches(generated_images(4, SIZE, seed=1), create_model("kitti6").config)


@pytest.fixture(scope="module")
def batch(images):
    return np.concatenate(images[:2])


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """The model exported once as dynamic ONNX and as OpenVINO IR, shared by the tests here."""
    from hydranet.export import export_onnx, save_openvino
    from hydranet.export.openvino import read_openvino

    folder = tmp_path_factory.mktemp("exported")
    onnx_path = export_onnx(model, folder / "m.onnx")
    ov_model = read_openvino(onnx_path)[0]
    return {"onnx": onnx_path, "xml": save_openvino(ov_model, folder / "m.xml")}


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_fp32_backend_matches_torch(name, model, batch):
    # From the loaded model: the backend exports it itself.
    backend = create_backend(name, model, threads=2)
    out = backend(batch)
    ref = torch_outputs(model, batch)
    assert set(out) == set(ref) == {"segmentation", "depth"}
    for key in ref:
        assert out[key].dtype == np.float32 and out[key].shape == ref[key].shape
        np.testing.assert_allclose(out[key], ref[key], atol=1e-4, rtol=0)
    # A second, odd size runs through the same backend (dynamic export, one compile per shape).
    odd = batch[:1, :, :50, :75]
    out = backend(np.ascontiguousarray(odd))
    assert out["segmentation"].shape == (1, 6, 13, 19)
    np.testing.assert_allclose(out["depth"], torch_outputs(model, np.ascontiguousarray(odd))["depth"], atol=1e-4)


def test_openvino_takes_uint8_images_and_normalises_them_in_the_graph(model):
    from hydranet.inference.pipeline import normalize
    from hydranet.inference.predictor import Predictor

    rgb = np.stack([np.asarray(im) for im in generated_images(2, SIZE, seed=3)])
    assert rgb.dtype == np.uint8 and rgb.shape == (2, *SIZE, 3)
    ref = torch_outputs(model, np.stack([normalize(im) for im in rgb]))
    backend = create_backend("openvino", model, threads=2)
    assert backend.takes_images
    for out in (backend(rgb), backend.stream_call(rgb[:1])):
        for key in out:
            assert out[key].dtype == np.float32
            np.testing.assert_allclose(out[key], ref[key][: len(out[key])], atol=1e-4, rtol=0)
    # The Predictor hands such an engine the resized image itself, and the same predictions.
    predictor = Predictor(model, backend="openvino", threads=2, size="native")
    assert predictor.prepare(rgb[0]).dtype == np.uint8
    torch_pred = Predictor(model, backend="torch", size="native")
    assert torch_pred.prepare(rgb[0]).dtype == np.float32
    np.testing.assert_allclose(predictor.predict(rgb[0]).depth, torch_pred.predict(rgb[0]).depth, atol=1e-3)


def test_torch_backend_nchw_and_channels_last_agree(model, batch):
    import copy

    a = TorchBackend(copy.deepcopy(model), channels_last=False)(batch)
    b = TorchBackend(copy.deepcopy(model), channels_last=True)(batch)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-4)


def test_openvino_int8_keeps_labels(model, images, exported):
    # Calibrated on generated street scenes (the default), checked on other generated scenes.
    backend = create_backend("openvino", exported["onnx"], precision="int8", calibration_sizes=[SIZE],
                             calibration_count=3)
    assert backend.precision == "int8"
    agreement = check_against_torch(model, backend, images)
    # Random weights, 6 classes: nearly every label survives, logits move but stay close.
    assert agreement.label_agreement > 0.9
    assert 0 < agreement.max_abs_diff["segmentation"] < 5


def test_openvino_bf16_runs_in_bf16(model, batch, exported):
    # As `hydranet bench` decides: the CPU's bf16 instructions, not OpenVINO's own report,
    # which is what this test checks.
    from hydranet.export.cpu import cpu_flags

    if not {"avx512_bf16", "amx_bf16"} & cpu_flags():
        pytest.skip("this CPU has no bf16 instructions (AVX512_BF16 / AMX): OpenVINO runs bf16 as f32")
    backend = create_backend("openvino", exported["xml"], precision="bf16")
    out = backend(batch)
    ref = torch_outputs(model, batch)
    assert backend.precision == "bf16" and backend.effective_precision(batch.shape) == "bf16"
    # bf16 keeps 8 mantissa bits: ~1e-2 of the logits' range (measured 1.8e-2), where f32 is
    # ~2e-6. The lower bound fails if the engine quietly computes in f32.
    scale = np.abs(ref["segmentation"]).max()
    err = np.abs(out["segmentation"] - ref["segmentation"]).max() / scale
    assert 1e-3 < err < 0.1
    assert (out["segmentation"].argmax(1) == ref["segmentation"].argmax(1)).mean() > 0.95
    # The same file asked for fp32 runs f32, within the fp32 tolerance.
    fp32 = create_backend("openvino", exported["xml"], precision="fp32")
    assert fp32.effective_precision(batch.shape) == "f32"
    np.testing.assert_allclose(fp32(batch)["segmentation"], ref["segmentation"], atol=1e-4)


def test_auto_picks_the_fastest_installed(exported):
    assert available_backends()[:3] == ["openvino", "onnxruntime", "torch"]
    assert default_backend() == "openvino"
    assert create_backend("auto", exported["onnx"]).name == "onnxruntime"  # the file's own backend
    assert create_backend("auto", exported["xml"]).name == "openvino"


def test_unsupported_precision_and_unknown_backend(model, exported):
    with pytest.raises(HydranetError, match="precision 'bf16' is not supported"):
        create_backend("onnxruntime", exported["onnx"], precision="bf16")
    with pytest.raises(HydranetError, match="unknown backend 'tensorrt'; available: openvino, onnxruntime, torch"):
        create_backend("tensorrt", model)


def test_missing_package_gives_install_hint(monkeypatch, model):
    # Simulate an environment without openvino: importing it fails.
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.delitem(sys.modules, "hydranet.inference.backends.openvino_backend", raising=False)
    with pytest.raises(BackendUnavailableError) as info:
        create_backend("openvino", model)
    assert str(info.value).startswith("backend 'openvino' needs `pip install hydranet[openvino]`")


def test_unregistered_optional_backend_gives_install_hint(monkeypatch, model):
    # What an installation without onnxruntime looks like: the backend is not registered.
    monkeypatch.delitem(backends.BACKENDS, "onnxruntime")
    assert "onnxruntime" not in available_backends()
    with pytest.raises(HydranetError, match=r"backend 'onnxruntime' needs `pip install hydranet\[onnx\]`"):
        create_backend("onnxruntime", model)


def test_exported_file_runs_in_its_backend(model, batch, exported):
    ref = torch_outputs(model, batch)
    for name, path in [("onnxruntime", exported["onnx"]), ("openvino", exported["xml"]),
                       ("openvino", exported["onnx"])]:
        backend = create_backend(name, path)
        assert backend.config == model.config
        out = backend(batch)
        for key in ref:
            np.testing.assert_allclose(out[key], ref[key], atol=1e-4)
    with pytest.raises(HydranetError, match="backend 'torch' cannot run this file"):
        create_backend("torch", exported["onnx"])
    with pytest.raises(HydranetError, match="backend 'onnxruntime' cannot run this file"):
        create_backend("onnxruntime", exported["xml"])


def test_efficientnet_exports_one_graph_for_every_size(tmp_path):
    # TensorFlow SAME padding at stride 2 depends on the input's parity; written with the
    # traced sizes, one exported graph is exact at odd, even and mixed sizes.
    import onnxruntime as ort

    from hydranet import create_model
    from hydranet.export import export_onnx

    torch.manual_seed(0)
    model = create_model("camvid11_lite0").eval()
    path = export_onnx(model, tmp_path / "lite0.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((64, 96), (61, 93), (64, 93), (47, 130)):
        x = np.random.default_rng(h).standard_normal((1, 3, h, w)).astype(np.float32)
        out = dict(zip(model.config.tasks, session.run(None, {session.get_inputs()[0].name: x})))
        ref = torch_outputs(model, x)
        for key in ref:
            assert out[key].shape == ref[key].shape
            np.testing.assert_allclose(out[key], ref[key], atol=1e-4)


def test_same_padding_matches_tensorflow_at_every_parity():
    from hydranet.model.efficientnet import SameConv2d

    torch.manual_seed(0)
    for k in (3, 5):
        conv = SameConv2d(2, 3, k, stride=2).eval()
        for h, w in ((8, 8), (9, 9), (8, 11), (13, 6)):
            x = torch.randn(1, 2, h, w)
            top, bottom = SameConv2d._pad(h, k, 2)  # TensorFlow's formula
            left, right = SameConv2d._pad(w, k, 2)
            ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (left, right, top, bottom)),
                                             conv.weight, stride=2)
            with torch.no_grad():
                assert torch.equal(conv(x), ref)


def test_size_specific_network_is_exported_per_size(tmp_path):
    # A layer whose padding a trace would fix to the traced size (here: EfficientNet's SAME
    # layers with the traceable form switched off) makes export refuse a dynamic graph, and
    # the backends export once per size.
    from hydranet.export import export_onnx
    from hydranet.export.onnx import SizeSpecificModelError
    from hydranet import create_model
    from hydranet.model.efficientnet import SameConv2d

    torch.manual_seed(0)
    model = create_model("camvid11_lite0").eval()
    for m in model.modules():
        if isinstance(m, SameConv2d):
            m._traceable = False
    # Known from its layers, before any tracing.
    with mock.patch("hydranet.export.onnx._torch_export", side_effect=AssertionError("traced")), \
            pytest.raises(SizeSpecificModelError, match="efficientnet_lite0 network's graph depends on the input size"):
        export_onnx(model, "unused.onnx")
    # A layer that hid it is still caught by running the traced graph at an odd size.
    with mock.patch("hydranet.model.efficientnet.SameConv2d.pads_by_input_size", False), \
            pytest.raises(SizeSpecificModelError, match="depends on the input size"):
        export_onnx(model, tmp_path / "traced.onnx")
    backend = create_backend("onnxruntime", model)
    x = np.random.default_rng(1).standard_normal((1, 3, 61, 93)).astype(np.float32)  # odd sizes
    out, ref = backend(x), torch_outputs(model, x)
    for key in ref:
        assert out[key].shape == ref[key].shape
        np.testing.assert_allclose(out[key], ref[key], atol=1e-4)


def test_fixed_size_file_names_its_size(model, tmp_path):
    import onnx

    from hydranet.errors import InputError
    from hydranet.export import export_onnx, read_onnx_metadata

    path = export_onnx(model, tmp_path / "fixed.onnx", size=(64, 96), batch=1)
    dims = [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 96]
    assert read_onnx_metadata(path)["hydranet.input_size"] == "64x96"
    path = export_onnx(model, tmp_path / "fixed.onnx", size=(64, 96))  # any batch
    backend = create_backend("onnxruntime", path)
    assert backend(np.zeros((2, 3, 64, 96), np.float32))["depth"].shape == (2, 1, 16, 24)
    with pytest.raises(InputError, match=r"fixed.onnx: exported for 64x96 inputs, got 48x64"):
        backend(np.zeros((1, 3, 48, 64), np.float32))


def test_openvino_streams_agree_with_one_request_from_many_threads(model, images):
    import threading

    backend = create_backend("openvino", model, threads=2)
    assert backend.concurrency == 3
    inputs = [np.ascontiguousarray(x[:, :, : 48 + 8 * (i % 2)]) for i, x in enumerate(images * 3)]  # two shapes
    expected = [backend(x) for x in inputs]
    results: dict[int, dict] = {}

    def work(i: int) -> None:
        results[i] = backend.stream_call(inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, ref in enumerate(expected):
        for key in ref:
            np.testing.assert_allclose(results[i][key], ref[key], atol=1e-4, rtol=0)


def test_predictor_infer_many_keeps_order_and_reports_each_failure(model, images):
    from hydranet.inference.predictor import Predictor

    predictor = Predictor(model, backend="openvino", threads=2)
    items = [("ok", images[0]), ("skip", None), ("bad", np.zeros((1, 4, 64, 96), np.float32)), ("ok", images[1])]
    seen = list(predictor.infer_many(items, lambda item: item[1]))
    assert [item for item, _, _ in seen] == items
    (_, a, ea), (_, b, eb), (_, c, ec), (_, d, ed) = seen
    assert ea is None and eb is None and b is None and d is not None and c is None
    assert "expected a (N, 3, H, W) batch" in str(ec)
    np.testing.assert_allclose(a["depth"], torch_outputs(model, images[0])["depth"], atol=1e-4)
    assert predictor.model_frames == 2


def test_streamed_inference_starts_in_a_fresh_process_without_deadlock(tmp_path):
    """The first numpy view of an OpenVINO tensor, made from two threads at once, deadlocked
    pybind11 in about a third of fresh processes; the backend now makes it first, in one thread.
    A race: without the fix, five runs in a row pass about one time in eight."""
    import os
    import subprocess

    script = ("import numpy as np\n"
              "from hydranet import Predictor\n"
              "p = Predictor()\n"
              "xs = [np.zeros((1, 3, 64, 96), np.float32) for _ in range(6)]\n"
              "assert all(e is None for _, _, e in p.infer_many(xs, lambda x: x))\n"
              "print('ok')\n")
    env = {**os.environ, "HYDRANET_HOME": str(tmp_path)}
    # The first run converts the network into the engine cache (touching tensors in one thread);
    # the others read it from there, as a second `hydranet predict` does, and race.
    for run in range(6):
        try:
            done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                                  timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"streamed inference hung in fresh process {run}")
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
