"""The depth_folder dataset and real-depth evaluation with baselines, on hand-made 8x12 frames."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, require_shared
from PIL import Image

from hydranet.data.datasets import DATASET_TYPES, DepthFolder, build_dataset
from hydranet.errors import InputError
from hydranet.evaluation.metrics import DepthMetrics
from hydranet.evaluation.real_depth import (constant_baseline, evaluate_depth_images,
                                            format_real_depth_table, row_flat_baseline,
                                            row_oracle_baseline, scored_pixels)

H, W = 8, 12
K_A = np.array([[10.0, 0.0, 6.0], [0.0, 10.0, 3.0], [0.0, 0.0, 1.0]])
# image a: (row, col) -> metres. (2, 5) lies beyond the 80 m cap; the model answers NaN, 0
# and inf at (5, 7), (7, 9) and (3, 8), so only 4 pixels are scored.
GT_A = {(1, 1): 20.0, (5, 2): 4.0, (6, 3): 2.0, (6, 10): 6.0, (5, 7): 8.0, (7, 9): 10.0, (3, 8): 3.0,
        (2, 5): 100.0}
GT_B = {(4, 4): 10.0, (6, 6): 5.0}


def _depth_png(values: dict[tuple[int, int], float]) -> np.ndarray:
    arr = np.zeros((H, W), np.uint16)
    for (r, c), v in values.items():
        arr[r, c] = round(v * 256)
    return arr


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _write_k(path: Path, k: np.ndarray) -> None:
    path.write_text("\n".join(" ".join(f"{v:.6f}" for v in row) for row in k) + "\n")


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    root = tmp_path / "realdepth"
    for sub in ("images", "depth", "intrinsics"):
        (root / sub).mkdir(parents=True)
    Image.fromarray(_image(0)).save(root / "images" / "a.png")
    Image.fromarray(_image(1)).save(root / "images" / "b.jpg")
    Image.fromarray(_depth_png(GT_A)).save(root / "depth" / "a.png")
    Image.fromarray(_depth_png(GT_B)).save(root / "depth" / "b.png")
    _write_k(root / "intrinsics" / "a.txt", K_A)  # b has no camera file
    return root


def _predict(image: np.ndarray, intrinsics: np.ndarray | None) -> np.ndarray:
    """4 m everywhere and 10 m at (1, 1) with NaN / 0 / inf holes on image a (it has a K);
    10 m everywhere on image b."""
    if intrinsics is None:
        return np.full(image.shape[:2], 10.0)
    pred = np.full(image.shape[:2], 4.0)
    pred[1, 1] = 10.0
    pred[5, 7], pred[7, 9], pred[3, 8] = np.nan, 0.0, np.inf
    return pred


def test_depth_folder_samples(root: Path) -> None:
    assert DATASET_TYPES["depth_folder"] is DepthFolder
    ds = build_dataset({"type": "depth_folder", "root": str(root)})
    assert len(ds) == 2
    a, b = ds[0], ds[1]
    assert a["name"] == "a" and b["name"] == "b"
    assert a["image"].dtype == np.uint8 and a["image"].shape == (H, W, 3)
    assert a["depth"].dtype == np.float32 and a["depth"].shape == (H, W)
    assert a["depth"][6, 10] == 6.0 and a["depth"][2, 5] == 100.0 and a["depth"][0, 0] == 0.0
    assert a["intrinsics"].dtype == np.float64 and a["intrinsics"].shape == (3, 3)
    np.testing.assert_allclose(a["intrinsics"], K_A)
    assert "intrinsics" not in b and "segmentation" not in a


def test_hand_computed_errors_and_baselines(root: Path) -> None:
    r = evaluate_depth_images(_predict, DepthFolder(root), progress=False)
    json.dumps(r, allow_nan=False)
    a, b = r["images"]
    assert (a["gt_pixels"], a["pixels"], a["dropped"]) == (7, 4, 3)
    # Scored on a: gt (20, 4, 2, 6) against the prediction (10, 4, 4, 4).
    ea = a["errors"]
    assert ea["model"]["abs_rel"] == pytest.approx((10 / 20 + 0 + 2 / 2 + 2 / 6) / 4)
    # Median scale 5 / 4: (12.5, 5, 5, 5).
    assert a["scale"] == pytest.approx(1.25)
    assert ea["model_median"]["abs_rel"] == pytest.approx((7.5 / 20 + 1 / 4 + 3 / 2 + 1 / 6) / 4)
    # The constant is the median of the 4 scored pixels (5 m), not of all 7 valid ones (6 m).
    assert ea["constant"]["abs_rel"] == pytest.approx((15 / 20 + 1 / 4 + 3 / 2 + 1 / 6) / 4)
    assert ea["constant"]["delta1"] == pytest.approx(1 / 4)  # only 5 m against 6 m is within 1.25 (5/4 is not < 1.25)
    assert ea["constant"]["rmse"] == pytest.approx(math.sqrt((15 ** 2 + 1 + 9 + 1) / 4))
    # Row oracle: rows 1, 5, 6 -> 20, 4, median(2, 6) = 4; median-scaled by 5 / 4.
    assert a["baseline_scales"]["row_oracle"] == pytest.approx(1.25)
    assert ea["row_oracle"]["abs_rel"] == pytest.approx((5 / 20 + 1 / 4 + 3 / 2 + 1 / 6) / 4)
    # Row profile of a from b alone (leave one out): b's gt (10, 5) over its median 7.5 gives
    # 4/3 in band 16 (row 4 of 8, 32 bands) and 2/3 in band 24 (row 6). a's rows 1, 5, 6 are
    # bands 4, 20, 24 -> 4/3 (clamped), 1 (interpolated), 2/3; median-scaled by 5 / (5/6) = 6.
    assert a["baseline_scales"]["row"] == pytest.approx(6.0)
    assert ea["row"]["abs_rel"] == pytest.approx((12 / 20 + 2 / 4 + 2 / 2 + 2 / 6) / 4)
    # b: gt (10, 5) against 10 m; median scale 0.75.
    eb = b["errors"]
    assert eb["model"]["abs_rel"] == pytest.approx(0.5)
    assert eb["model_median"]["abs_rel"] == pytest.approx((0.25 + 0.5) / 2)
    assert eb["constant"]["abs_rel"] == pytest.approx((0.25 + 0.5) / 2)
    # b from a's profile: a's gt over its median 5 is 4 in band 4, 0.8 in bands 20 and 24; b's
    # rows 4 and 6 (bands 16, 24) get 1.6 and 0.8, the same 2:1 as b's gt: a perfect row map.
    assert eb["row"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    overall = r["overall"]
    assert overall["pixels"] == 6
    assert overall["image_mean"]["model"]["abs_rel"] == pytest.approx((ea["model"]["abs_rel"] + 0.5) / 2)
    assert overall["pixel_pooled"]["model"]["abs_rel"] == pytest.approx((0.5 + 0 + 1 + 1 / 3 + 0 + 1) / 6)


def test_errors_by_true_distance_by_hand(root: Path) -> None:
    r = evaluate_depth_images(_predict, DepthFolder(root), progress=False)
    bands = {(b["from"], b["to"]): b for b in r["by_distance"]}
    assert list(bands) == [(0.0, 10.0), (10.0, 20.0), (20.0, 40.0), (40.0, 80.0)]
    # (prediction, truth), metric: a (10, 20), (4, 4), (4, 2), (4, 6); b (10, 10), (10, 5).
    near, mid, far, farthest = bands.values()
    assert near["pixels"] == 4 and mid["pixels"] == 1 and far["pixels"] == 1 and farthest["pixels"] == 0
    assert near["abs_rel"]["model"] == pytest.approx((0 + 1 + 1 / 3 + 1) / 4)
    assert near["ratio"]["model"] == pytest.approx(1.5)  # median of 1, 2, 2/3, 2
    assert mid["abs_rel"]["model"] == pytest.approx(0.0) and mid["ratio"]["model"] == pytest.approx(1.0)
    assert far["abs_rel"]["model"] == pytest.approx(0.5) and far["ratio"]["model"] == pytest.approx(0.5)
    # Median-scaled, each image by its own scale (a 5/4, b 3/4): a (12.5, 20), (5, 4), (5, 2),
    # (5, 6); b (7.5, 10), (7.5, 5).
    assert near["abs_rel"]["model_median"] == pytest.approx((1 / 4 + 3 / 2 + 1 / 6 + 1 / 2) / 4)
    assert near["ratio"]["model_median"] == pytest.approx((1.25 + 1.5) / 2)
    assert far["ratio"]["model_median"] == pytest.approx(12.5 / 20)
    # The constant (a: 5 m, b: 7.5 m) on the 10-20 m pixel: b's 10 m.
    assert mid["abs_rel"]["constant"] == pytest.approx(0.25)
    assert "constant" not in mid["ratio"]
    assert farthest["abs_rel"]["model"] is None
    table = format_real_depth_table(r)
    assert "by true distance" in table and "40-80 m" in table
    assert any(ln.startswith("0-10 m") and "1.50" in ln for ln in table.splitlines())


def test_model_median_matches_depth_metrics(root: Path) -> None:
    # On the scored pixels the mean over images is DepthMetrics' own median-scaled figure.
    ds = DepthFolder(root)
    r = evaluate_depth_images(_predict, ds, progress=False)
    metrics = DepthMetrics(max_depth=80.0, min_depth=1e-3, median_scaling=True)
    for i in range(len(ds)):
        s = ds[i]
        pred = _predict(s["image"], s.get("intrinsics"))
        gt = np.where(scored_pixels(pred, s["depth"]), s["depth"], 0.0)
        metrics.update(np.nan_to_num(pred, posinf=0.0), gt)
    expected = metrics.compute()
    for key in ("abs_rel", "sq_rel", "rmse", "delta1"):
        assert r["overall"]["image_mean"]["model_median"][key] == pytest.approx(expected[key])


def test_baselines_use_only_the_model_pixels() -> None:
    gt = np.zeros((H, W))
    gt[2, :4] = [1.0, 2.0, 3.0, 90.0]
    gt[5, 3] = 7.0
    pred = np.ones((H, W))
    pred[2, 2] = np.nan
    mask = scored_pixels(pred, gt, max_depth=80.0)
    assert sorted(zip(*np.nonzero(mask))) == [(2, 0), (2, 1), (5, 3)]
    assert np.all(constant_baseline(gt, mask) == 2.0)
    oracle = row_oracle_baseline(gt, mask)
    assert np.all(oracle == oracle[:, :1])  # a function of the row only
    np.testing.assert_allclose(oracle[:, 0], [1.5, 1.5, 1.5, 1.5 + 5.5 / 3, 1.5 + 11 / 3, 7, 7, 7])


def test_row_flat_depends_on_the_row_only() -> None:
    flat = row_flat_baseline((H, W), K_A, max_depth=80.0)
    assert np.all(flat == flat[:, :1])
    np.testing.assert_allclose(flat[:, 0], [80, 80, 80, 80, 16.5, 8.25, 5.5, 4.125])
    # Without K the horizon is the middle row and the focal length that of a 60-degree view.
    no_k = row_flat_baseline((H, W), None, max_depth=80.0)
    f = 6 / math.tan(math.radians(30))
    np.testing.assert_allclose(no_k[:, 0], [80] * 5 + [f * 1.65, f * 1.65 / 2, f * 1.65 / 3])


def test_table_lists_images_and_overall_rows(root: Path) -> None:
    r = evaluate_depth_images(_predict, DepthFolder(root), progress=False)
    table = format_real_depth_table(r)
    lines = table.splitlines()
    assert any(ln.startswith("a ") for ln in lines) and any(ln.startswith("b ") for ln in lines)
    assert any(ln.startswith("mean over images") for ln in lines)
    assert any(ln.startswith("pixel-pooled") for ln in lines)
    for column in ("model med", "constant", "row", "row oracle", "d1 med"):
        assert column in table
    assert f"{r['images'][0]['errors']['constant']['abs_rel']:.3f}" in table
    only_metric = evaluate_depth_images(_predict, DepthFolder(root), median_scaling=False, progress=False)
    assert "model_median" not in only_metric["methods"]
    assert "model med" not in format_real_depth_table(only_metric)


def test_one_image_gets_no_row_only_map_and_images_without_a_camera_are_counted(root: Path) -> None:
    r = evaluate_depth_images(_predict, DepthFolder(root), progress=False)
    assert [e["intrinsics"] for e in r["images"]] == [True, False]
    assert r["overall"]["without_intrinsics"] == 1 and "row" in r["methods"]
    # With one image there are no other images to take a row profile from: the row-only map is
    # left out (a flat stand-in would only repeat the constant and count as a win against it).
    (root / "depth" / "b.png").unlink()
    (root / "images" / "b.jpg").unlink()
    one = evaluate_depth_images(_predict, DepthFolder(root), progress=False)
    assert "row" not in one["methods"] and "row" not in one["images"][0]["errors"]
    assert one["settings"]["row"].startswith("not computed")
    table = format_real_depth_table(one)
    assert "row-only map: not computed, it needs at least two images" in table
    header = [c for c in table.splitlines()[3].split("  ") if c.strip()]
    assert "than: constant 1/1 images" in table and "row" not in [c.strip() for c in header]
    assert "row oracle" in [c.strip() for c in header]
    assert one["overall"]["without_intrinsics"] == 0


def test_the_general_evaluation_predicts_each_image_for_its_own_camera(root: Path) -> None:
    from hydranet.evaluation.evaluate import evaluate

    seen = []

    def predict(images, intrinsics=None):
        seen.append(None if intrinsics is None else [None if k is None else k[0, 0] for k in intrinsics])
        return [(np.zeros(im.shape[:2], np.uint8), _predict(im, None if intrinsics is None else intrinsics[i]))
                for i, im in enumerate(images)]

    result = evaluate(predict, DepthFolder(root), 3, max_depth=80.0, batch_size=2, progress=False)
    assert seen == [[K_A[0, 0], None]]  # a's intrinsics/a.txt, b without one, in one batch
    assert result["without_intrinsics"] == 1
    (root / "intrinsics" / "a.txt").unlink()
    seen.clear()
    assert evaluate(predict, DepthFolder(root), 3, max_depth=80.0, batch_size=2,
                    progress=False)["without_intrinsics"] == 2
    assert seen == [None]  # nobody states a camera: the call stays predict(images)


def test_wrong_prediction_size_is_an_error(root: Path) -> None:
    with pytest.raises(InputError, match="predict depth HxW at the image's size"):
        evaluate_depth_images(lambda im, k: np.ones((4, 6)), DepthFolder(root), progress=False)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_depth_file_names_it(root: Path) -> None:
    (root / "depth" / "b.png").unlink()
    with pytest.raises(InputError) as exc:
        DepthFolder(root)
    message = _one_line(exc)
    assert str(root / "depth" / "b.png") in message and "on_bad_label: missing" in message
    with pytest.warns(UserWarning, match="b is used without depth"):
        ds = DepthFolder(root, on_bad_label="missing")
    r = evaluate_depth_images(_predict, ds, progress=False)
    assert [e["name"] for e in r["images"]] == ["a"] and r["skipped"] == ["b"]


@pytest.mark.parametrize("kind", ["8bit", "garbage", "size"])
def test_bad_depth_file_names_it(root: Path, kind: str) -> None:
    path = root / "depth" / "b.png"
    if kind == "8bit":
        Image.fromarray(np.zeros((H, W), np.uint8)).save(path)
    elif kind == "garbage":
        path.write_bytes(b"not a png")
    else:
        Image.fromarray(np.zeros((H, W + 1), np.uint16)).save(path)
    ds = DepthFolder(root)  # depth files are decoded by verify(), which evaluation runs first
    with pytest.raises(InputError) as exc:
        evaluate_depth_images(_predict, ds, progress=False)
    message = _one_line(exc)
    assert str(path) in message
    assert {"8bit": "16-bit", "garbage": "cannot read", "size": "13x8"}[kind] in message


@pytest.mark.parametrize("text, match", [("1 0 0\n0 1 0\n", "6 numbers, expected 9"),
                                         ("fx 0 0\n0 1 0\n0 0 1\n", "not numbers"),
                                         ("0 0 6\n0 0 3\n0 0 1\n", "positive focal")])
def test_bad_intrinsics_file_names_it(root: Path, text: str, match: str) -> None:
    path = root / "intrinsics" / "a.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as exc:
        DepthFolder(root)
    message = _one_line(exc)
    assert str(path) in message and "3x3 camera matrix" in message
    with pytest.warns(UserWarning, match="a is used without intrinsics"):
        ds = DepthFolder(root, on_bad_label="missing")
    assert "intrinsics" not in ds[0]


def test_missing_depth_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    Image.fromarray(_image(0)).save(tmp_path / "images" / "a.png")
    with pytest.raises(InputError, match="depth/ folder not found"):
        DepthFolder(tmp_path)


def test_realdepth_dev_reads(one_thread) -> None:
    root = require_shared(SHARED / "data" / "realdepth_dev")
    ds = build_dataset({"type": "depth_folder", "root": str(root)})
    assert len(ds) == 6
    s = ds[0]
    assert s["intrinsics"].shape == (3, 3) and s["depth"].shape == s["image"].shape[:2]
    # The baselines do not depend on the model (when it answers everywhere): a constant model
    # of 10 m and one of 20 m see the same baseline figures.
    ten = evaluate_depth_images(lambda im, k: np.full(im.shape[:2], 10.0), ds, progress=False, max_images=2)
    twenty = evaluate_depth_images(lambda im, k: np.full(im.shape[:2], 20.0), ds, progress=False, max_images=2)
    for e10, e20 in zip(ten["images"], twenty["images"]):
        assert e10["pixels"] == e20["pixels"] > 1000
        for b in ("constant", "row", "row_oracle"):
            assert e10["errors"][b] == e20["errors"][b]
        assert e10["errors"]["model_median"]["abs_rel"] == pytest.approx(e20["errors"]["model_median"]["abs_rel"])


def test_eval_with_no_scorable_image_fails_in_one_line(root: Path, small_weights: Path, capsys, one_thread) -> None:
    # Each unreadable depth file is a one-line warning and skipped; a run with nothing left to
    # score is an error (exit 2), not an empty table that looks like a result.
    from hydranet.cli.main import main

    (root / "depth" / "a.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "depth" / "b.png")
    code = main(["eval", "--weights", str(small_weights), "--dataset", "depth_folder", "--root", str(root),
                 "--backend", "torch"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hydranet:")]
    assert code == 2
    assert err[0].startswith(f"hydranet: warning: {root / 'depth' / 'a.png'}: cannot read") and "UserWarning" not in err[0]
    assert err[1].startswith(f"hydranet: warning: {root / 'depth' / 'b.png'}: not a sparse depth map")
    assert err[2] == (f"hydranet: error: {root}: no image could be scored (2 skipped: a, b; see the warnings above); "
                      "each images/NAME needs depth/NAME.png, a 16-bit PNG of metres x 256 at the image's size")
