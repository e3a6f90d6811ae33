"""Export round trips (ONNX, OpenVINO IR, INT8), metadata, calibration images and `hydranet export`."""

from __future__ import annotations

import os
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from hydranet.checkpoints import save_weights
from hydranet.cli.main import main
from hydranet.errors import CheckpointError, InputError
from hydranet.export import (
    export_onnx,
    export_openvino,
    generated_images,
    load_images,
    parse_size,
    read_onnx_config,
    read_onnx_metadata,
    read_openvino,
    to_batches,
)
from hydranet.export.check import compare_outputs, torch_outputs
from hydranet.export.quantize import onnx_weight_type, quantize_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

from test_backends import random_model  # noqa: E402  (shared seeded model)


@pytest.fixture(scope="module")
def model():
    return random_model()


@pytest.fixture(scope="module")
def weights(model, tmp_path_factory):
    return save_weights(model, tmp_path_factory.mktemp("w") / "model.safetensors")


def run_ort(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": x})))


def test_parse_size():
    assert parse_size("192x640") == (192, 640)
    assert parse_size("dynamic") is None and parse_size(None) is None
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        parse_size("192,640")


def test_onnx_dynamic_round_trip(model, tmp_path):
    path = export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert [o.name for o in proto.graph.output] == ["segmentation", "depth"]
    assert read_onnx_config(path) == model.config
    assert read_onnx_metadata(path)["hydranet.precision"] == "fp32"
    for shape in [(1, 3, 64, 96), (2, 3, 50, 75)]:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        out, ref = run_ort(path, x), torch_outputs(model, x)
        for key in ref:
            np.testing.assert_allclose(out[key], ref[key], atol=1e-4)


def test_openvino_ir_round_trip(model, tmp_path):
    path = export_openvino(model, tmp_path / "m.xml", precision="bf16")
    assert path.with_suffix(".bin").stat().st_size > 11e6  # fp32 weights, not compressed to fp16
    ov_model, config, precision = read_openvino(path)
    assert config == model.config and precision == "bf16"


def test_int8_onnx_carries_metadata(model, tmp_path):
    fp32 = export_onnx(model, tmp_path / "m.onnx", size=(64, 96))
    images = to_batches(generated_images(3, (64, 96)), model.config)
    int8 = quantize_onnx(fp32, tmp_path / "m8.onnx", images)
    meta = read_onnx_metadata(int8)
    assert meta["hydranet.precision"] == "int8" and read_onnx_config(int8) == model.config
    graph = onnx.load(str(int8)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    assert meta["hydranet.int8_weights"] == onnx_weight_type("auto")
    # The first convolution and both heads stay fp32: no dequantized input or weight feeds the
    # output convolutions; the heads' first convolution reads the shared (INT8) decoder feature.
    producer = {o: n for n in graph.node for o in n.output}
    for name in ["/model/layer1/layer1.0/Conv", "/model/segm/conv/Conv", "/model/depth/conv/Conv", "/model/pre_segm/Conv"]:
        (node,) = [n for n in graph.node if n.name == name]
        inputs = node.input[1:] if "pre_" in name else node.input
        assert all(producer[i].op_type != "DequantizeLinear" for i in inputs if i in producer), name
    quantized = [n for n in graph.node if n.op_type == "Conv"
                 and producer.get(n.input[1]) is not None and producer[n.input[1]].op_type == "DequantizeLinear"]
    assert len(quantized) > 50  # everything else is INT8
    assert int8.stat().st_size < fp32.stat().st_size / 2
    refs = [torch_outputs(model, x) for x in images]
    agreement = compare_outputs(refs, [run_ort(int8, x) for x in images])
    assert agreement.label_agreement > 0.9
    # The backend runs the INT8 file as INT8, whatever precision is asked.
    from hydranet.inference.backends import create_backend

    backend = create_backend("onnxruntime", int8)
    assert backend.precision == "int8" and backend.config == model.config


def test_u8_weights_keep_depthwise_convolutions_s8(model, tmp_path):
    # Without VNNI dense convolutions take u8 weights (s8 saturates there); depthwise ones keep
    # symmetric s8, which onnxruntime runs ~16x faster than u8 and which cannot saturate.
    fp32 = export_onnx(model, tmp_path / "m.onnx", size=(64, 96))
    images = to_batches(generated_images(3, (64, 96)), model.config)
    int8 = quantize_onnx(fp32, tmp_path / "m8.onnx", images, weights="u8")
    graph = onnx.load(str(int8)).graph
    init = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    kinds = {"depthwise": set(), "dense": set()}
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] not in producer:
            continue
        dq = producer[node.input[1]]
        if dq.op_type != "DequantizeLinear":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight, zero = init[dq.input[0]], onnx.numpy_helper.to_array(init[dq.input[2]])
        kind = "depthwise" if group > 1 and weight.dims[1] == 1 else "dense"
        kinds[kind].add((weight.data_type, bool(np.all(zero == 0)) if kind == "depthwise" else None))
    assert kinds["depthwise"] == {(onnx.TensorProto.INT8, True)}
    assert kinds["dense"] == {(onnx.TensorProto.UINT8, None)}
    assert read_onnx_metadata(int8)["hydranet.int8_weights"] == "u8"
    refs = [torch_outputs(model, x) for x in images]
    assert compare_outputs(refs, [run_ort(int8, x) for x in images]).label_agreement > 0.9


def test_int8_weight_type_follows_the_cpu(monkeypatch):
    import hydranet.export.cpu as cpu

    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert onnx_weight_type("auto") == "u8"  # VPMADDUBSW saturates with s8 weights
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))
    assert onnx_weight_type("auto") == "s8"
    assert onnx_weight_type("u8") == "u8"
    with pytest.raises(ValueError, match="choose s8, u8 or auto"):
        onnx_weight_type("s4")


def test_unreadable_exports_are_named(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file at all")
    with pytest.raises(CheckpointError, match="bad.onnx: not a readable ONNX file"):
        read_onnx_config(bad)
    xml = tmp_path / "lonely.xml"
    xml.write_text("<net/>")
    with pytest.raises(CheckpointError, match="lonely.bin is missing"):
        read_openvino(xml)


def test_compare_outputs_by_hand():
    ref = {"segmentation": np.array([[[[1.0, 0.0]], [[0.0, 1.0]]]]), "depth": np.array([[[[2.0, 4.0]]]])}
    cand = {"segmentation": np.array([[[[1.0, 2.0]], [[0.0, 1.0]]]]), "depth": np.array([[[[2.5, 4.0]]]])}
    agreement = compare_outputs([ref], [cand])
    assert agreement.max_abs_diff == {"segmentation": 2.0, "depth": 0.5}
    assert agreement.label_agreement == 0.5  # pixel 2 flips from class 1 to class 0
    assert agreement.depth_rel_diff == pytest.approx((0.5 / 2.0 + 0.0) / 2)


def test_any_size_graphs_are_calibrated_at_the_sizes_the_weights_see():
    from hydranet.checkpoints import load_model
    from hydranet.export.calibration import CalibrationSource
    from hydranet.model import ModelConfig

    # The bundled model resizes a 4:3, 16:9 or 3.3:1 frame to 480 px wide at the assumed 60 degrees.
    source = CalibrationSource(load_model("default").config, None, count=8)
    assert source.sizes == [(360, 480), (270, 480), (145, 480)]
    shapes = [b.shape for b in source.batches(None)]
    assert shapes == [(1, 3, 360, 480)] * 3 + [(1, 3, 270, 480)] * 3 + [(1, 3, 145, 480)] * 2
    # A graph that holds at one size only is calibrated at that size.
    assert {b.shape for b in source.batches((64, 96))} == {(1, 3, 64, 96)}
    # Weights without a canonical camera (the paper's) keep 192x640.
    assert CalibrationSource(ModelConfig(num_classes=6), None, count=2).sizes == [(192, 640)]


def test_calibration_folder_skips_bad_files(tmp_path, capsys):
    for i, image in enumerate(generated_images(3, (40, 60))):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    images = load_images(tmp_path, count=10, size=(32, 48))
    assert len(images) == 3 and all(im.shape == (32, 48, 3) and im.dtype == np.uint8 for im in images)
    assert "broken.jpg: skipped" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty: no images"):
        load_images(empty, 4, None)


def test_export_cli_prints_difference(weights, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    code = main(["export", "--weights", str(weights), "--format", "onnx", "--size", "64x96",
                 "--out", str(out), "--check-images", "2"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"wrote {out}" in text and "64x96 fixed" in text
    assert "segmentation  max |diff|" in text and "labels        100.00% of pixels agree" in text
    assert "within 0.0001 of PyTorch: yes" in text
    assert read_onnx_config(out).num_classes == 6


def test_export_without_weights_takes_the_bundled_model(tmp_path, capsys):
    # Like every command, export defaults to the bundled model: one graph for every input size.
    from hydranet.export.onnx import read_onnx_config

    out = tmp_path / "m.onnx"
    assert main(["export", "--format", "onnx", "--out", str(out), "--check-images", "2"]) == 0
    captured = capsys.readouterr().out
    assert "dynamic height and width" in captured and "within 0.0001 of PyTorch: yes" in captured
    assert read_onnx_config(out).encoder == "efficientnet_lite0"


def test_export_cli_openvino_int8_with_calibration(weights, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(generated_images(3, (56, 80), seed=5)):
        Image.fromarray(image).save(folder / f"{i}.png")
    out = tmp_path / "m8.xml"
    code = main(["export", "--weights", str(weights), "--format", "openvino", "--precision", "int8",
                 "--calibration", str(folder), "--size", "48x64", "--out", str(out), "--check-images", "3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "calibrating INT8 on 3 images from" in captured.err
    assert "check against PyTorch fp32 on 3 images from" in captured.out
    agree = float(captured.out.split("labels")[1].split("%")[0])
    assert agree > 90
    assert read_openvino(out)[2] == "int8"


def test_export_cli_user_errors(weights, tmp_path, capsys):
    existing = tmp_path / "x.onnx"
    existing.write_bytes(b"")
    assert main(["export", "--weights", str(weights), "--format", "onnx", "--out", str(existing)]) == 2
    assert "x.onnx: already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["export", "--weights", str(weights), "--format", "openvino", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "written as a '.xml' file" in capsys.readouterr().err
    assert main(["export", "--weights", str(weights), "--format", "onnx", "--precision", "bf16",
                 "--out", str(tmp_path / "b.onnx")]) == 2
    assert "bf16 is for --format openvino" in capsys.readouterr().err


def test_head_channels_padded_to_blocks_on_a_copy(model):
    import torch

    from hydranet.export.onnx import SlicedConv, pad_head_channels

    padded = pad_head_channels(model)
    assert isinstance(padded.segm, SlicedConv) and padded.segm.conv.out_channels == 8
    assert isinstance(padded.depth, SlicedConv) and padded.depth.conv.out_channels == 8
    assert isinstance(model.depth, torch.nn.Conv2d) and model.depth.out_channels == 1  # original untouched
    x = np.random.default_rng(3).standard_normal((1, 3, 40, 56)).astype(np.float32)
    a, b = torch_outputs(model, x), torch_outputs(padded, x)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_export_cli_asks_for_a_size_when_the_graph_needs_one(tmp_path, capsys):
    import torch

    from hydranet import create_model

    torch.manual_seed(0)
    from hydranet.model.efficientnet import SameConv2d

    weights = save_weights(create_model("camvid11_lite0"), tmp_path / "effnet.safetensors")
    out = tmp_path / "effnet.onnx"
    # A layer whose padding a trace would fix (SAME computed from Python ints).
    with mock.patch.object(SameConv2d, "pads_by_input_size", property(lambda self: True)):
        assert main(["export", "--weights", str(weights), "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hydranet: error: the efficientnet_lite0 network's graph depends on the input size")
    assert "export at a fixed size with --size HxW" in err and not out.exists()


def test_openvino_int8_quantizes_every_convolution_with_7_bit_weights_without_vnni(model, monkeypatch):
    import hydranet.export.cpu as cpu
    from hydranet.export.openvino import convert_to_openvino
    from hydranet.export.quantize import quantize_openvino

    def weight_ranges(flags):
        """(smallest, largest) int8 weight of every convolution, read through its dequantization."""
        monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
        batches = to_batches(generated_images(2, (64, 96)), model.config)
        graph = quantize_openvino(convert_to_openvino(model, (64, 96)), batches)
        ranges = {}
        for op in graph.get_ordered_ops():
            if op.get_type_name() not in ("Convolution", "GroupConvolution"):
                continue
            node = op.input_value(1).get_node()
            while node.get_type_name() in ("Multiply", "Subtract", "Convert", "Reshape"):
                node = node.input_value(0).get_node()
            assert node.get_type_name() == "Constant", op.get_friendly_name()
            assert node.get_output_element_type(0).get_type_name() == "i8", op.get_friendly_name()
            data = node.get_data()
            ranges[op.get_friendly_name()] = (op.get_type_name(), int(data.min()), int(data.max()))
        return ranges

    without = weight_ranges({"avx2", "fma"})
    with_vnni = weight_ranges({"avx2", "avx512f", "avx512_vnni"})
    # Every convolution is INT8 on both, the first and the heads' output convolutions included.
    assert set(without) == set(with_vnni)
    for name in ("/model/layer1/layer1.0/Conv/WithoutBiases", "/model/depth/conv/Conv/WithoutBiases",
                 "/model/segm/conv/Conv/WithoutBiases"):
        assert name in without
    # Without VNNI a pair of u8 x s8 products must fit 16 bits (2 * 255 * 64 < 32768) in the
    # dense convolutions; NNCF's overflow fix leaves grouped ones at 8 bits.
    dense = [name for name, (kind, _, _) in without.items() if kind == "Convolution"]
    assert len(dense) > 20
    assert all(-64 <= without[n][1] and without[n][2] <= 64 for n in dense)
    assert max(with_vnni[n][2] for n in dense) == 127


_SENDS = """
import sys
import openvino_telemetry.backend.backend_ga4 as ga4

sent = []
ga4.GA4Backend.send = lambda self, message: sent.append(message["events"][0]["name"])
if sys.argv[1] == "hydranet":
    import numpy as np

    import hydranet
    from hydranet.export.openvino import convert_to_openvino
    from hydranet.export.quantize import quantize_openvino

    graph = convert_to_openvino(hydranet.create_model("kitti6").eval(), (64, 96))
    quantize_openvino(graph, [np.zeros((1, 3, 64, 96), np.float32)] * 2)
else:
    import openvino  # noqa: F401
print(len(sent))
"""


@pytest.mark.parametrize("opted_in", [False, True])
def test_openvino_and_nncf_send_no_telemetry_unless_the_user_opted_in(opted_in, tmp_path):
    # OpenVINO's import and converter and NNCF send usage events unless the user opted out;
    # offline, the process sending one was seen blocking a program's exit for minutes.
    pytest.importorskip("nncf")
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    if opted_in:  # what OpenVINO's `opt_in_out --opt_in` writes
        (home / "intel").mkdir()
        (home / "intel" / "openvino_telemetry").write_text("1")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(home)

    def sends(what: str) -> int:
        done = subprocess.run([sys.executable, "-c", _SENDS, what], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return int(done.stdout.split()[-1])

    assert sends("openvino") >= 1  # the recorder sees what OpenVINO sends by itself
    if opted_in:
        assert sends("hydranet") > 0  # an explicit opt-in is the user's choice and stands
    else:
        assert sends("hydranet") == 0
