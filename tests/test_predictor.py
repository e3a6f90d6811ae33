"""``Predictor`` and ``Prediction``: the reference notebooks' post-processing, batching, rendering."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from predict_helpers import H, W, scene

import hydranet
from hydranet.errors import InputError
from hydranet.inference.predictor import Prediction, Predictor
from hydranet.inference.render import colorize_depth
from hydranet.labels import KITTI6

# Other jobs share the 2 cores: these tests run with one intra-op thread.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def predictor(small_weights):
    return Predictor(small_weights, backend="torch")


def test_matches_the_reference_notebook_postprocessing(parity_ckpt, parity_dir):
    """Bicubic resize of the reference network's logits / depth, argmax, abs (as the notebooks)."""
    io = np.load(parity_dir / "kitti_io.npz")
    image = io["rand_200x300__image_uint8_hwc"]
    logits, depth = io["rand_200x300__segm_logits_f32"][0], io["rand_200x300__depth_raw_f32"][0, 0]
    up = cv2.resize(logits.transpose(1, 2, 0), (300, 200), interpolation=cv2.INTER_CUBIC)
    ref_labels = up.argmax(axis=2)
    ref_depth = np.abs(cv2.resize(depth, (300, 200), interpolation=cv2.INTER_CUBIC))
    pred = Predictor(parity_ckpt, backend="torch").predict(image, keep_lowres=True)
    np.testing.assert_allclose(pred.logits_lowres, logits, atol=1e-4, rtol=1e-4)
    top2 = np.sort(up, axis=2)[:, :, -2:]
    decided = (top2[:, :, 1] - top2[:, :, 0]) > 1e-3  # pixels not on a numerical tie
    assert decided.mean() > 0.99
    np.testing.assert_array_equal(pred.labels[decided], ref_labels[decided])
    np.testing.assert_allclose(pred.depth, ref_depth, atol=1e-4, rtol=1e-4)
    assert pred.labels.shape == (200, 300) and pred.labels.dtype == np.uint8
    assert pred.depth.dtype == np.float32


def test_prepare_is_bit_identical_to_preprocess(predictor):
    image = scene(37, 53)
    np.testing.assert_array_equal(predictor.prepare(image), hydranet.preprocess(image)[0].numpy())


def test_prediction_is_at_input_resolution_and_consistent_with_the_model(predictor, small_weights):
    image = scene()
    pred = predictor.predict(image, keep_lowres=True)
    assert pred.labels.shape == (H, W) and pred.depth.shape == (H, W) and pred.image is not None
    model = hydranet.load_model(small_weights)
    with torch.no_grad():
        out = model(hydranet.preprocess(image))
    np.testing.assert_allclose(pred.logits_lowres, out["segmentation"][0].numpy(), atol=1e-4, rtol=1e-4)
    assert pred.logits_lowres.shape == (6, 16, 24)  # ceil(ceil(64 / 2) / 2) x ...
    assert (pred.depth >= 0).all() and pred.depth.max() > 0
    assert predictor.model_frames >= 1 and predictor.model_ms_per_frame > 0
    assert predictor.config.num_classes == 6 and pred.class_names == list(KITTI6.class_names)


def test_inference_size_resizes_but_results_come_back_at_full_size(small_weights):
    sized = Predictor(small_weights, size=(32, 48), backend="torch")
    pred = sized.predict(scene(), keep_lowres=True)
    assert pred.logits_lowres.shape == (6, 8, 12)
    assert pred.labels.shape == (H, W) and pred.depth.shape == (H, W)
    with pytest.raises(InputError):
        Predictor(small_weights, size=(4, 4), backend="torch")


def test_predict_batch_equals_single_predictions(predictor):
    images = [scene(seed=1), scene(40, 56, seed=2), scene(seed=3)]
    batch = predictor.predict_batch(images, batch_size=2)
    assert [p.labels.shape for p in batch] == [(H, W), (40, 56), (H, W)]
    for image, pred in zip(images, batch):
        single = predictor.predict(image)
        assert (single.labels == pred.labels).mean() > 0.999
        np.testing.assert_allclose(single.depth, pred.depth, atol=1e-3, rtol=1e-4)


def test_greyscale_and_rgba_arrays_are_accepted_other_arrays_are_not(predictor):
    grey = scene()[:, :, 0]
    a = predictor.predict(grey)
    b = predictor.predict(np.dstack([grey] * 3))
    np.testing.assert_array_equal(a.labels, b.labels)
    rgba = np.dstack([scene(), np.zeros((H, W), np.uint8)])
    np.testing.assert_array_equal(predictor.predict(rgba).labels, predictor.predict(scene()).labels)
    with pytest.raises(InputError, match="uint8"):
        predictor.predict(scene().astype(np.float32))
    with pytest.raises(InputError, match="HxWx3"):
        predictor.predict(np.zeros((4, 4, 5), np.uint8))


def test_prediction_renders():
    labels = np.array([[0, 1], [2, 5]], np.uint8)
    depth = np.array([[0.0, 20.0], [40.0, 80.0]], np.float32)
    image = np.full((2, 2, 3), 100, np.uint8)
    pred = Prediction(image=image, labels=labels, depth=depth, class_names=list(KITTI6.class_names),
                      palette=KITTI6.palette_array())
    np.testing.assert_array_equal(pred.colorize(), KITTI6.palette_array()[labels])
    np.testing.assert_array_equal(pred.overlay(1.0), KITTI6.palette_array()[labels])
    np.testing.assert_array_equal(pred.depth_colormap(), colorize_depth(depth, (0, 80)))
    np.testing.assert_array_equal(pred.depth_colormap((0, 40))[1, 0], colorize_depth(depth, (0, 40))[1, 0])


def test_panel_layout(predictor):
    pred = predictor.predict(scene())
    row = pred.panel()  # 96x64 is not wide: four tiles in one row
    assert row.dtype == np.uint8 and row.shape[1] == 4 * W + 5 * 4
    wide = predictor.predict(scene(32, 96)).panel()  # wider than 2:1: a 2x2 grid
    assert wide.shape[1] == 2 * 96 + 3 * 4
    small = pred.panel(tile_height=32, columns=1)
    assert small.shape[1] == 48 + 2 * 4


def test_exported_from_the_package():
    assert hydranet.Predictor is Predictor and hydranet.Prediction is Prediction


def test_three_task_model_adds_normals_to_the_panel():
    torch.manual_seed(0)
    model = hydranet.create_model("nyud40_three")
    pred = Predictor(model, backend="torch").predict(scene(48, 64))
    assert pred.normals.shape == (48, 64, 3)
    np.testing.assert_allclose(np.linalg.norm(pred.normals, axis=2), 1.0, atol=1e-5)
    panel = pred.panel()
    assert panel.shape[1] == 5 * 64 + 6 * 4  # image | segmentation | overlay | depth | normals
    assert pred.depth_range == (0.0, 10.0) and len(pred.class_names) == 40


class _SlowToBuild:
    """The torch backend behind an engine cache whose every new input shape takes ``build`` seconds."""

    def __init__(self, inner, build: float) -> None:
        from hydranet.inference.backends.base import CompiledByShape, SetupClock

        self.inner, self.config, self.build = inner, inner.config, build
        self.setup = SetupClock()
        self._engines = CompiledByShape(self._make, 4, self.setup)
        self.concurrency = 3

    def _make(self, shape):
        import time

        time.sleep(self.build)
        return shape

    def __call__(self, batch):
        self._engines.get(tuple(batch.shape))
        return self.inner(batch)

    stream_call = __call__


def test_making_an_engine_is_set_up_time_not_model_time(small_weights):
    # The first call of a new size converts and compiles: reported apart, so that the
    # network's ms/frame is its speed and not the one-off conversion's.
    predictor = Predictor(small_weights, backend="torch")
    predictor.backend = _SlowToBuild(predictor.backend, build=1.0)
    for _ in range(2):
        predictor.predict(scene(seed=1))
    assert 1.0 <= predictor.setup_seconds < 1.5
    # Several requests in flight that all wait for one build: none of the wait counts either.
    images = [scene(40, 56, seed=s) for s in range(4)]
    done = list(predictor.infer_many(images, lambda im: predictor.prepare(im)[None]))
    assert all(out is not None and exc is None for _, out, exc in done)
    assert 2.0 <= predictor.setup_seconds < 2.5
    assert predictor.model_frames == 6
    assert predictor.model_seconds < 0.5  # six small frames, measured ~0.05 s in all


def test_predict_reports_the_rate_without_the_time_spent_making_engines(small_weights, tmp_path, capsys,
                                                                          monkeypatch):
    # The one-off conversion is said apart; the frames/s is what the run keeps at these sizes.
    import re

    from PIL import Image

    import hydranet.cli.predict as predict_cli
    from hydranet.cli.main import main

    for i in range(3):
        Image.fromarray(scene(seed=i)).save(tmp_path / f"{i}.png")
    made = predict_cli.make_predictor

    def slow(args):
        predictor = made(args)
        predictor.backend = _SlowToBuild(predictor.backend, build=2.0)
        return predictor

    monkeypatch.setattr(predict_cli, "make_predictor", slow)
    assert main(["predict", str(tmp_path), "--weights", str(small_weights), "--backend", "torch",
                 "--out", str(tmp_path / "out")]) == 0
    done = capsys.readouterr().out.splitlines()[-1]
    seconds, setup, fps = (float(v) for v in re.search(
        r"3 frames in ([\d.]+) s, and ([\d.]+) s making engines.*end to end ([\d.]+) frames/s",
        done).groups())
    assert setup >= 2.0 and seconds < 2.0
    # Printed to 0.1 s, so only bounds: counting the 2 s build would make it at most 3 / 2 frames/s.
    assert fps >= 3 / (seconds + 0.1) and fps > 3 / 2
