"""Two-view motion depth: triangulation against a scene of known depth, the scale and its
consistency check, the merge with flat-ground depth, and the CLI's --motion-step."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2")

from hydranet.cli.main import main  # noqa: E402
from hydranet.data import motion_depth as md  # noqa: E402
from hydranet.data import pseudo_depth as pd  # noqa: E402

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR = range(9)
H, W, F = 240, 320, 300.0
K = np.array([[F, 0, (W - 1) / 2], [0, F, (H - 1) / 2], [0, 0, 1]])
NEAR, FAR = 10.0, 25.0  # metres: a wall on the left half of frame a, another behind everything
MOVE = np.array([0.3, 0.0, 1.5])  # camera b sits 0.3 m right of and 1.5 m ahead of camera a


def _texture(seed: int, size: int = 1200) -> np.ndarray:
    import cv2

    noise = np.random.default_rng(seed).uniform(0, 255, (size, size)).astype(np.float32)
    tex = cv2.GaussianBlur(noise, (0, 0), 1.5)
    return cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX)


def _view(centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two-wall scene seen from ``centre`` (in camera a's axes), and its z-depth in that camera."""
    import cv2

    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    ray = np.stack([(u - K[0, 2]) / F, (v - K[1, 2]) / F, np.ones_like(u)], -1)
    near_s = (NEAR - centre[2]) / ray[..., 2]
    near_x = centre[0] + near_s * ray[..., 0]
    on_near = near_x < 0  # the near wall covers x < 0 in camera a's axes
    s = np.where(on_near, near_s, (FAR - centre[2]) / ray[..., 2])
    point = centre + s[..., None] * ray
    # Texture fixed on each wall: its coordinates are the wall's own x, y in centimetres.
    tu = (point[..., 0] * 100 / 4 + 600).astype(np.float32)
    tv = (point[..., 1] * 100 / 4 + 600).astype(np.float32)
    near_img = cv2.remap(_texture(1), tu, tv, cv2.INTER_LINEAR)
    far_img = cv2.remap(_texture(2), tu, tv, cv2.INTER_LINEAR)
    gray = np.where(on_near, near_img, far_img)
    rgb = np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, -1)
    return rgb, point[..., 2] - centre[2]


@pytest.fixture(scope="module")
def pair():
    a, depth = _view(np.zeros(3))
    b, _ = _view(MOVE)
    return a, b, depth


def _halves_ok(depth_m: np.ndarray, truth: np.ndarray, tol: float) -> None:
    for name, region in (("near wall", truth == NEAR), ("far wall", truth == FAR)):
        ok = region & (depth_m > 0)
        assert ok.sum() > 0.2 * region.sum(), f"{name}: only {ok.sum()} of {region.sum()} pixels placed"
        rel = np.abs(depth_m[ok] - truth[ok]) / truth[ok]
        assert np.median(rel) < tol, f"{name}: median abs rel {np.median(rel):.3f}"


def test_known_motion_gives_metric_depth(pair):
    a, b, truth = pair
    # x_b = R x_a + t with R = I and t = -MOVE: depth comes in units of |t|.
    r = md.two_view_depth(a, b, K, pose=(np.eye(3), -MOVE))
    assert r is not None and r.matches == 0
    _halves_ok(r.depth * np.linalg.norm(MOVE), truth, 0.03)
    assert r.confidence.max() <= 1 and (r.confidence[r.depth == 0] == 0).all()


def test_estimated_motion_and_the_scale_from_a_reference(pair):
    a, b, truth = pair
    r = md.two_view_depth(a, b, K)
    assert r is not None and r.matches >= 40
    assert np.degrees(np.arccos(np.clip(r.translation @ (-MOVE / np.linalg.norm(MOVE)), -1, 1))) < 3
    reference = np.where(np.arange(H)[:, None] > H - 40, truth, 0.0)  # a strip, as a road would give
    scale = md.scale_to(r, reference, reference > 0)
    assert scale is not None
    _halves_ok(r.depth * scale, truth, 0.05)
    # A reference that disagrees in shape (depth growing fourfold from left to right) is refused.
    wrong = truth * np.linspace(0.5, 2.0, W)[None, :]
    assert md.scale_to(r, wrong, np.ones_like(wrong, bool)) is None
    assert md.scale_to(r, reference, np.zeros_like(reference, bool)) is None  # no overlap


def test_moving_classes_and_a_still_camera_get_nothing(pair):
    a, b, _ = pair
    labels = np.full((H, W), BUILDING, np.uint8)
    labels[:, : W // 2] = CAR
    r = md.two_view_depth(a, b, K, md.static_mask(labels, "camvid11"), pose=(np.eye(3), -MOVE))
    assert (r.depth[:, : W // 2] == 0).all() and (r.depth[:, W // 2:] > 0).any()
    assert md.two_view_depth(a, a, K) is None  # no motion: no pose


def test_merge_fills_only_what_flat_ground_leaves_out():
    labels = np.array([[BUILDING, BUILDING, TREE, ROAD, CAR]], np.uint8)
    flat = np.array([[10.0, 0.0, 12.0, 8.0, 0.0]], np.float32)
    flat_conf = np.array([[0.9, 0.0, 0.3, 0.9, 0.0]], np.float32)
    motion = np.array([[30.0, 40.0, 50.0, 60.0, 70.0]], np.float32)
    motion_conf = np.full((1, 5), 0.8, np.float32)
    depth, conf = md.merge(flat, flat_conf, motion, motion_conf, labels, "camvid11")
    np.testing.assert_allclose(depth, [[10.0, 40.0, 50.0, 8.0, 0.0]])
    np.testing.assert_allclose(conf, [[0.9, 0.8, 0.8, 0.9, 0.0]])


def test_nothing_stands_nearer_than_the_road_in_front_of_it():
    # One column each: road below a building (flat-ground road 10 m and 14 m), and no road at all.
    labels = np.array([[BUILDING, BUILDING, BUILDING], [BUILDING, BUILDING, BUILDING],
                       [ROAD, ROAD, BUILDING], [ROAD, ROAD, BUILDING]], np.uint8)
    flat = np.array([[0, 0, 0], [0, 0, 0], [14.0, 14.0, 0], [10.0, 10.0, 0]], np.float32)
    conf = np.array([[0, 0, 0], [0, 0, 0], [0.9, 0.3, 0], [0.9, 0.9, 0]], np.float32)
    motion = np.array([[6.9, 4.9, 3.0], [7.1, 5.1, 3.0], [0, 0, 0], [0, 0, 0]], np.float32)
    keep = md.above_its_ground(motion, flat, conf, labels, "camvid11")
    # column 0: the farthest confident road below is 14 m, so under 7 m is impossible;
    # column 1: its 14 m road is not confident, 10 m counts; column 2 has no road to compare with.
    np.testing.assert_array_equal(keep, [[False, False, True], [True, True, True], [True, True, True],
                                         [True, True, True]])


def test_cli_motion_step_takes_the_previous_frame_when_the_next_one_gives_nothing(tmp_path, pair, capsys):
    a, b, _ = pair
    labels = np.full((H, W), BUILDING, np.uint8)
    labels[: H // 3] = SKY
    labels[H // 2:, 60:260] = ROAD
    root, out = tmp_path / "camvid", tmp_path / "pd"
    _camvid_pair(root, a, b, labels)
    # The car stood still after frame 1: frame 2 is frame 1 again, so 1 -> 2 has no parallax.
    Image.fromarray(b).save(root / "train" / "SeqA_002.png")
    Image.fromarray(labels).save(root / "trainannot" / "SeqA_002.png")
    assert main(["pseudo-depth", "--root", str(root), "--out", str(out), "--focal", str(F), "--horizon",
                 str(H // 3), "--motion-step", "1"]) == 0
    assert "SeqA: motion depth on 1 frames (1 without a pose, 1 without a scale)" in capsys.readouterr().out
    # Frame 1 against frame 2 has no parallax; against frame 0, the one before it, it has.
    found = pd.read_pseudo_depth(out / "motion", "SeqA_001")
    assert found is not None and (found[1] >= 0.5).sum() > 1000
    assert pd.read_pseudo_depth(out / "motion", "SeqA_002") is None  # 2 -> 1: no parallax either way


def _camvid_pair(root, a, b, labels):
    for sub in ("train", "trainannot"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, img in (("SeqA_000", a), ("SeqA_001", b)):
        Image.fromarray(img).save(root / "train" / f"{name}.png")
        Image.fromarray(labels).save(root / "trainannot" / f"{name}.png")


def test_cli_motion_step_writes_motion_files_and_reports(tmp_path, pair, capsys):
    a, b, _ = pair
    labels = np.full((H, W), BUILDING, np.uint8)
    labels[: H // 3] = SKY
    labels[H // 2:, 60:260] = ROAD  # a road for the horizon; the walls standing on it give the scale
    root, out = tmp_path / "camvid", tmp_path / "pd"
    _camvid_pair(root, a, b, labels)
    assert main(["pseudo-depth", "--root", str(root), "--out", str(out), "--focal", str(F), "--horizon",
                 str(H // 3), "--motion-step", "1"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"SeqA: motion depth on \d+ frames \(\d+ without a pose, \d+ without a scale\)", printed)
    meta = json.loads((out / pd.META_FILE).read_text())
    assert meta["settings"]["motion_step"] == 1 and "two-view" in meta["motion"]["method"]
    assert meta["sequences"]["SeqA"]["motion"]["frames"] + meta["sequences"]["SeqA"]["motion"]["no_scale"] + \
        meta["sequences"]["SeqA"]["motion"]["no_pose"] == 2
    assert pd.read_pseudo_depth(out, "SeqA_000") is not None
    # A second run keeps the files and reports the same coverage.
    first = re.search(r"valid [\d.]+ %.*", printed).group(0)
    frames = meta["sequences"]["SeqA"]["motion"]["frames"]
    assert frames > 0, meta["sequences"]["SeqA"]["motion"]
    assert main(["pseudo-depth", "--root", str(root), "--out", str(out), "--focal", str(F), "--horizon",
                 str(H // 3), "--motion-step", "1"]) == 0
    again = capsys.readouterr().out
    assert "2 already present" in again and first in again
    assert json.loads((out / pd.META_FILE).read_text())["sequences"]["SeqA"]["motion"]["frames"] == frames


def test_cli_motion_step_needs_images(tmp_path, capsys):
    labels = tmp_path / "labels"
    labels.mkdir()
    Image.fromarray(np.full((40, 60), ROAD, np.uint8)).save(labels / "a_1.png")
    assert main(["pseudo-depth", "--labels", str(labels), "--out", str(tmp_path / "o"), "--horizon", "5",
                 "--motion-step", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--motion-step needs the frames' images" in err
