"""One pipeline: every path from an image to labels and depth gives the same pixels.

The four paths are ``Predictor`` (``hydranet predict``), ``hydranet eval``'s prediction
function, training validation (``model_predict_fn``) and ``hydranet pseudo-label``. They are
also checked against an independent computation (float64 normalisation, PyTorch's own
bicubic resize), so a change of kernel in the shared code is caught too.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import hydranet
from hydranet.cli.main import main
from hydranet.evaluation.evaluate import backend_predict_fn, model_predict_fn
from hydranet.export.calibration import street_scene
from hydranet.inference.camera import Intrinsics
from hydranet.inference.pipeline import _upsample, normalize, plan_input, preprocess, upsampled_argmax

SRC = Path(__file__).resolve().parents[1] / "src" / "hydranet"


@pytest.fixture(scope="module")
def model() -> hydranet.HydraNet:
    torch.manual_seed(3)
    net = hydranet.model.hydranet(4, encoder="mobilenetv2")
    with torch.no_grad():  # random BN statistics make labels vary over the image
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def reference_input(image: np.ndarray, mean, std) -> np.ndarray:
    """The reference's normalisation, written out: float64 arithmetic, then float32, CHW."""
    x = (image.astype(np.float64) / 255.0 - np.asarray(mean)) / np.asarray(std)
    return x.astype(np.float32).transpose(2, 0, 1)


def reference_outputs(model: hydranet.HydraNet, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and |depth| computed without the project's pipeline (torch bicubic resize)."""
    x = torch.from_numpy(reference_input(image, model.config.mean, model.config.std))[None]
    with torch.no_grad():
        out = model(x)
    size = image.shape[:2]
    logits = F.interpolate(out["segmentation"], size=size, mode="bicubic", align_corners=False)
    depth = F.interpolate(out["depth"], size=size, mode="bicubic", align_corners=False)
    return logits[0].argmax(0).numpy(), depth[0, 0].abs().numpy()


def test_normalisation_is_the_reference_arithmetic_bit_for_bit():
    image = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    expected = reference_input(image, mean, std)
    assert np.array_equal(normalize(image, mean, std), expected)
    assert np.array_equal(preprocess(image).numpy()[0], expected)
    other = (0.5, 0.4, 0.3), (0.2, 0.3, 0.4)
    assert np.array_equal(normalize(image, *other), reference_input(image, *other))


@pytest.mark.parametrize("classes", [1, 2, 11, 40])
def test_upsampled_argmax_is_numpys_argmax_with_its_ties(classes):
    rng = np.random.default_rng(classes)
    # Coarse values make ties frequent: the first class must win them, as numpy's argmax does.
    logits = rng.integers(-3, 4, (classes, 13, 17)).astype(np.float32)
    for size in [(13, 17), (52, 68), (37, 101), (5, 9)]:
        expected = _upsample(logits, size).argmax(axis=2)
        got = upsampled_argmax(logits, size)
        assert got.dtype == np.uint8 and got.shape == size
        assert np.array_equal(got, expected)
    smooth = rng.standard_normal((classes, 13, 17)).astype(np.float32)
    assert np.array_equal(upsampled_argmax(smooth, (90, 120)), _upsample(smooth, (90, 120)).argmax(axis=2))


def test_normalisation_of_views_and_odd_shapes():
    image = np.random.default_rng(3).integers(0, 256, (31, 9, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    for view in (image[:, ::-1], image[::2], image[:1, :1]):
        assert np.array_equal(normalize(view, mean, std), reference_input(np.ascontiguousarray(view), mean, std))


def _four_paths(model, image, tmp_path, size=None):
    text_size = None if size is None else f"{size[0]}x{size[1]}"
    predictor = hydranet.Predictor(model, size=size, backend="torch")
    pred = predictor.predict(image)
    eval_fn = backend_predict_fn(model, "torch", size, 1)
    eval_labels, eval_depth = eval_fn([image])[0]
    val_labels, val_depth = model_predict_fn(model, size)([image])[0]
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    Image.fromarray(image).save(images / "a.png")
    weights = hydranet.save_weights(model, tmp_path / "m.safetensors")
    out = tmp_path / "pseudo"
    argv = ["pseudo-label", "--teacher", str(weights), "--images", str(images), "--out", str(out),
            "--overwrite"] + (["--size", text_size] if text_size else [])
    assert main(argv) == 0
    pseudo = np.asarray(Image.open(out / "a.png"))
    return pred, (eval_labels, eval_depth), (val_labels, val_depth), pseudo


@pytest.mark.parametrize("size", [None, (40, 56), (96, 136)])
def test_predict_eval_validation_and_pseudo_labels_agree(model, tmp_path, size):
    image = street_scene((60, 84), seed=1)
    pred, (el, ed), (vl, vd), pseudo = _four_paths(model, image, tmp_path, size)
    assert len(np.unique(pred.labels)) > 1  # a test of something
    for labels in (el, vl, pseudo):
        assert np.array_equal(labels, pred.labels)
    # The torch backend runs channels_last, training validation contiguous: float32 rounding.
    np.testing.assert_allclose(ed, pred.depth, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vd, pred.depth, rtol=1e-5, atol=1e-5)


def test_pipeline_matches_an_independent_computation(model):
    image = street_scene((60, 84), seed=2)
    pred = hydranet.Predictor(model, backend="torch").predict(image)
    labels, depth = reference_outputs(model, image)
    # OpenCV's and PyTorch's bicubic kernels agree to ~1e-5: labels may only differ at ties.
    assert (labels == pred.labels).mean() > 0.995
    np.testing.assert_allclose(pred.depth, depth, rtol=1e-3, atol=1e-3)


def test_pseudo_label_confidence_is_the_softmax_of_the_chosen_class(model, tmp_path):
    image = street_scene((60, 84), seed=4)
    pred = hydranet.Predictor(model, backend="torch").predict(image, confidence=True)
    x = torch.from_numpy(reference_input(image, model.config.mean, model.config.std))[None]
    with torch.no_grad():
        logits = F.interpolate(model(x)["segmentation"], size=image.shape[:2], mode="bicubic",
                               align_corners=False)
    prob = logits.softmax(1)[0].max(0).values.numpy()
    np.testing.assert_allclose(pred.extra["confidence"], prob, atol=1e-3)


def test_camera_aware_plan_by_hand_values(model):
    cfg = dataclasses.replace(model.config, canonical_focal=400.0)
    # fx 800 at 1000 px wide: resized by 0.5, depth factor (800 * 500/1000) / 400 = 1.
    assert plan_input(cfg, (300, 1000), None, Intrinsics(800, 800, 500, 150)) == ((150, 500), 1.0)
    # A fixed input of 200 px width: the network sees fx 160, so its depth is multiplied by 0.4.
    size, factor = plan_input(cfg, (300, 1000), (60, 200), Intrinsics(800, 800, 500, 150))
    assert size == (60, 200) and factor == pytest.approx(0.4)
    # At the native size the network sees fx 800: depth x 2.
    assert plan_input(cfg, (300, 1000), "native", Intrinsics(800, 800, 500, 150)) == (None, 2.0)
    # No camera: a 60 degree field of view, fx = 500 / tan(30 deg) = 866.03 for 1000 px.
    size, factor = plan_input(cfg, (300, 1000), None, None)
    assert size == (139, 462) and factor == pytest.approx(866.0254 * 462 / 1000 / 400, rel=1e-5)
    # The paper's weights (no canonical focal) keep their native size and raw depth.
    assert plan_input(model.config, (300, 1000), None, Intrinsics(800, 800, 500, 150)) == (None, 1.0)


def test_camera_aware_depth_scales_with_the_camera(model):
    cfg = dataclasses.replace(model.config, canonical_focal=100.0)
    aware = hydranet.HydraNet(cfg)
    aware.load_state_dict(model.state_dict())
    aware.eval()
    image = street_scene((80, 112), seed=5)
    predictor = hydranet.Predictor(aware, backend="torch")
    near = predictor.predict(image, intrinsics=(100, 100, 56, 40))
    far = predictor.predict(image, intrinsics=(200, 200, 56, 40))
    # The same pixels through a lens of twice the focal length: the network sees the image at
    # half the size, and the scene is twice as far for the same apparent size.
    half = hydranet.Predictor(aware, size=(40, 56), backend="torch").predict(image, intrinsics=(200, 200, 56, 40))
    np.testing.assert_allclose(far.depth, half.depth, rtol=1e-6)
    assert near.depth is not None and not np.allclose(near.depth, far.depth)


def test_no_module_outside_cli_imports_the_cli():
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                names = [("." * node.level) + module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("hydranet.cli") or name.lstrip(".").startswith("cli") and name.startswith("."):
                    offenders.append(f"{rel}: {name}")
    assert not offenders, offenders


def test_native_size_is_capped_for_huge_inputs(model):
    from hydranet.inference.pipeline import MAX_INPUT_SIDE

    # The paper's weights: native size, but never a network input beyond the memory budget.
    assert plan_input(model.config, (375, 1242), None) == (None, 1.0)
    size, factor = plan_input(model.config, (3000, 8000), None)
    assert size == (768, MAX_INPUT_SIDE) and factor == 1.0
    assert plan_input(model.config, (3000, 8000), "native") == (None, 1.0)  # the explicit opt-out
