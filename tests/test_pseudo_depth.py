"""Flat-ground pseudo-depth: geometry against exact synthetic depth, the horizon from road edges,
object contacts, the CLI's files and the dataset that reads them."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hydranet.cli.main import main
from hydranet.data import pseudo_depth as pd
from hydranet.data.datasets import build_dataset
from hydranet.errors import InputError

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)
VOID = 255


def road_scene(h: int = 120, w: int = 160, vp: tuple[float, float] = (40.0, 80.0),
               slopes: tuple[float, float] = (1.2, 0.9)) -> np.ndarray:
    """Sky above the vanishing row, buildings beside, a road trapezoid whose edges meet at ``vp``."""
    v0, u0 = vp
    lab = np.full((h, w), BUILDING, np.uint8)
    lab[: int(v0)] = SKY
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    dv = vv - v0
    lab[(dv > 0) & (uu >= u0 - slopes[0] * dv - 6) & (uu <= u0 + slopes[1] * dv + 6)] = PAVEMENT
    lab[(dv > 0) & (uu >= u0 - slopes[0] * dv) & (uu <= u0 + slopes[1] * dv)] = ROAD
    return lab


# -- geometry against the renderer's exact depth -----------------------------------------------

@pytest.fixture(scope="module")
def renderer():
    pytest.importorskip("pybullet")
    from hydranet.data.synthetic import SceneRenderer

    r = SceneRenderer()
    yield r
    r.close()


@pytest.mark.parametrize("pitch_deg,height", [(0.0, 1.5), (-2.0, 1.3)])
def test_road_depth_matches_exact_synthetic_depth(renderer, pitch_deg, height):
    from hydranet.data.synthetic import Camera, generate_layout

    layout = generate_layout(7)
    cam = Camera(position=(0.0, layout.ego_lane_y, height), pitch=math.radians(pitch_deg),
                 height=120, width=160, hfov_deg=60.0)
    render = renderer.render(layout, cam)
    truth = np.where(np.isfinite(render.depth), render.depth, 0)
    horizon = cam.principal_point[1] + cam.focal * math.tan(cam.pitch)
    depth, conf = pd.flat_ground_depth(render.labels, horizon, height, cam.focal)
    road = (render.labels == ROAD) & (depth > 0) & (truth > 0)
    assert road.sum() > 2000
    rel = np.abs(depth[road] - truth[road]) / truth[road]
    assert np.percentile(rel, 95) < 0.01  # pitch's cos factor and pixel rounding only
    assert np.all(depth[render.labels == SKY] == 0) and np.all(conf[depth == 0] == 0)
    assert depth.max() <= pd.MAX_DEPTH and conf.max() <= 1
    valid = (depth > 0) & (truth > 0)
    assert np.median(np.abs(depth[valid] - truth[valid]) / truth[valid]) < 0.03
    # A horizon guessed 5 rows off moves road depth by about 5 / (v - v0): a few per cent near by.
    near = road & (np.arange(120)[:, None] > horizon + 40)
    shifted, _ = pd.flat_ground_depth(render.labels, horizon - 5, height, cam.focal)
    assert 0.05 < np.median(np.abs(shifted[near] - truth[near]) / truth[near]) < 0.15


# -- the horizon ---------------------------------------------------------------------------------

def test_horizon_from_a_road_trapezoid():
    lab = road_scene(vp=(40.0, 80.0))
    assert pd.estimate_horizon(lab) == pytest.approx(40.0, abs=1.0)
    lab2 = road_scene(vp=(52.5, 70.0), slopes=(0.7, 1.6))
    assert pd.estimate_horizon(lab2) == pytest.approx(52.5, abs=1.0)
    # Cars hide the left edge far away and the right edge near by, so no row shows both:
    # each edge gets its own line then.
    occluded = lab.copy()
    occluded[41:76, :75] = CAR
    occluded[76:120, 90:] = CAR
    rows, _ = pd.road_width_rows(occluded)
    assert len(rows) < 12
    assert pd.estimate_horizon(occluded) == pytest.approx(40.0, abs=1.5)
    # No road, no horizon.
    assert pd.estimate_horizon(np.full((50, 60), BUILDING, np.uint8)) is None


def test_sequence_camera_takes_the_median_over_frames():
    frames = [road_scene(vp=(v, 80.0)) for v in (39.0, 40.0, 41.0, 40.0)]
    frames.append(np.full((120, 160), SKY, np.uint8))  # a frame without road
    cam = pd.fit_sequence_camera(frames)
    assert cam.frames == 5 and cam.frames_with_road_horizon == 4
    assert cam.horizon == pytest.approx(40.0, abs=1.0)
    assert cam.horizon_source.startswith("road width")


def test_camera_height_check_from_pedestrian_sizes():
    # A person of 1.7 m standing with feet on row c is 1.7 * (c - v0) / h pixels tall.
    v0, h = 40.0, 1.25
    lab = road_scene(vp=(v0, 80.0))
    frames = []
    for c in (70, 80, 95, 110):
        f = lab.copy()
        tall = round(1.7 * (c - v0) / h)
        f[c - tall:c, 75:80] = PEDESTRIAN  # rows c - tall .. c - 1: contact boundary c - 0.5
        frames.append(f)
    cam = pd.fit_sequence_camera(frames, min_objects=3)
    assert cam.camera_height_estimate == pytest.approx(h, rel=0.05)
    assert cam.horizon_objects["pedestrian"] == pytest.approx(v0, abs=2.0)


# -- objects standing on the ground ------------------------------------------------------------

def test_objects_take_the_depth_of_their_ground_contact():
    f, h, v0 = 100.0, 1.5, 20.0
    lab = np.full((100, 80), ROAD, np.uint8)
    lab[:20] = SKY
    lab[20:40, 10:30] = BUILDING  # above the car: occluded at its foot -> invalid
    lab[40:60, 10:30] = CAR  # rows 40..59, road from row 60: contact at 59.5
    lab[50:70, 40:46] = PEDESTRIAN
    lab[64:70, 42:44] = ROAD  # between the legs: the envelope of the feet bridges it
    lab[30:75, 55] = POLE
    lab[75:77, 55] = VOID  # an annotation seam between pole and road
    lab[10:40, 65:70] = TREE
    lab[40:45, 65:70] = BUILDING  # a tree ending on a building: no contact
    lab[85:100, 72:76] = CAR  # runs off the bottom of the image: no contact
    lab[60:100, 0:5] = PAVEMENT
    depth, conf = pd.flat_ground_depth(lab, v0, h, f)

    def expect(contact: float) -> float:
        return f * h / (contact - v0)

    assert np.allclose(depth[40:60, 10:30], expect(59.5), rtol=1e-5)
    assert np.all(depth[20:40, 10:30] == 0) and np.all(conf[20:40, 10:30] == 0)
    assert np.allclose(depth[50:70, 40:46][lab[50:70, 40:46] == PEDESTRIAN], expect(69.5), rtol=1e-5)
    assert np.allclose(depth[30:75, 55], expect(76.5), rtol=1e-5)
    assert np.all(depth[10:40, 65:70] == 0)
    assert np.all(depth[85:100, 72:76] == 0)
    assert np.all(depth[:20] == 0)
    # Road rows: z = f h / (v - v0); pavement is a kerb above the road.
    assert depth[80, 20] == pytest.approx(f * h / 60, rel=1e-5)
    assert depth[80, 2] == pytest.approx(f * (h - pd.SURFACE_HEIGHTS["pavement"]) / 60, rel=1e-5)
    # Rows right under the horizon are invalid; confidence falls towards the horizon.
    assert np.all(depth[20:24, 35] == 0) and depth[25, 35] > 0
    assert 0 < conf[26, 35] < conf[60, 35] < conf[99, 35] <= 1
    # Higher than 6 m above the contact loses confidence.
    tall = np.full((100, 20), ROAD, np.uint8)
    tall[:90, 5:10] = BUILDING
    d2, c2 = pd.flat_ground_depth(tall, 0.0, 15.0, f, horizon_error=0.0)  # a camera 15 m up
    heights = 15.0 * (89.5 - np.arange(90)) / 89.5
    assert np.allclose(d2[:90, 7], f * 15.0 / 89.5)
    assert c2[0, 7] < 0.5 < c2[60, 7]
    assert np.allclose(c2[:90, 7], np.minimum(1.0, 6.0 / heights), atol=1e-5)


def test_class_names_come_from_the_label_set():
    # kitti6 has road/sidewalk/car but no pavement: class ids follow names, unknown names are skipped.
    assert pd.class_ids("kitti6", ["road", "pavement", "car"]).tolist() == [2, 5]
    lab = np.full((60, 40), 2, np.uint8)  # kitti6 road
    lab[:20] = 0  # sky
    lab[25:40, 10:20] = 5  # car standing on the road from row 40
    depth, _ = pd.flat_ground_depth(lab, 20.0, 1.5, 100.0, label_set="kitti6")
    assert np.allclose(depth[25:40, 10:20], 100 * 1.5 / 19.5)
    with pytest.raises(InputError):
        pd.flat_ground_depth(lab, 20.0, 1.5, 100.0, label_set="no-such-set")


# -- the CLI and the dataset ---------------------------------------------------------------------

def _camvid_tree(root: Path, frames: dict[str, np.ndarray]) -> None:
    (root / "train").mkdir(parents=True)
    (root / "trainannot").mkdir()
    for name, lab in frames.items():
        Image.fromarray(np.zeros(lab.shape + (3,), np.uint8)).save(root / "train" / f"{name}.png")
        raw = np.where(lab == VOID, 11, lab).astype(np.uint8)  # CamVid's own void id
        Image.fromarray(raw).save(root / "trainannot" / f"{name}.png")


def test_cli_writes_decodable_files_and_the_dataset_uses_them(tmp_path, capsys):
    frames = {f"SeqA_{i:03d}": road_scene(vp=(40.0 + d, 80.0)) for i, d in enumerate((0, 1, -1))}
    frames.update({f"SeqB_{i:03d}": road_scene(vp=(55.0, 70.0)) for i in range(3)})
    root, out = tmp_path / "camvid", tmp_path / "pd"
    _camvid_tree(root, frames)
    assert main(["pseudo-depth", "--root", str(root), "--out", str(out), "--focal", "100",
                 "--camera-height", "1.4"]) == 0
    printed = capsys.readouterr().out
    assert "SeqA: 3 frames" in printed and "6 written" in printed
    meta = json.loads((out / pd.META_FILE).read_text())
    assert meta["focal"] == 100 and meta["camera_height"] == 1.4
    assert meta["sequences"]["SeqA"]["horizon"] == pytest.approx(40.0, abs=1.0)
    assert meta["sequences"]["SeqB"]["horizon"] == pytest.approx(55.0, abs=1.0)
    assert meta["frames"]["SeqB_002"] == "SeqB" and meta["assumptions"]

    raw = np.asarray(Image.open(out / "SeqA_000.png"))
    conf = np.asarray(Image.open(out / "SeqA_000_conf.png"))
    assert raw.dtype == np.uint16 and conf.dtype == np.uint8 and raw.shape == (120, 160)
    horizon = meta["sequences"]["SeqA"]["horizon"]
    assert raw[100, 80] / 256 == pytest.approx(100 * 1.4 / (100 - horizon), abs=1 / 256)
    assert raw[10, 80] == 0 and conf[10, 80] == 0  # sky

    ds = build_dataset({"type": "camvid", "root": str(root), "split": "train", "pseudo_depth": str(out)})
    s = ds[0]
    assert s["pseudo_depth"] is True and s["focal"] == pytest.approx(100.0)
    assert s["depth"].dtype == np.float32 and s["depth"].shape == s["image"].shape[:2]
    assert s["depth"][100, 80] == pytest.approx(raw[100, 80] / 256)
    strict = build_dataset({"type": "camvid", "root": str(root), "split": "train", "pseudo_depth": str(out),
                            "pseudo_depth_threshold": 0.9})[0]
    assert 0 < (strict["depth"] > 0).sum() < (s["depth"] > 0).sum()
    plain = build_dataset({"type": "camvid", "root": str(root), "split": "train"})[0]
    assert "depth" not in plain and "focal" not in plain

    # A second run keeps the files; other settings need --overwrite.
    assert main(["pseudo-depth", "--root", str(root), "--out", str(out), "--focal", "100",
                 "--camera-height", "1.4"]) == 0
    assert "6 already present" in capsys.readouterr().out
    assert main(["pseudo-depth", "--root", str(root), "--out", str(out), "--focal", "90"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_labels_folder_with_a_fixed_horizon(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    Image.fromarray(road_scene()).save(labels / "frame1.png")
    out = tmp_path / "out"
    assert main(["pseudo-depth", "--labels", str(labels), "--out", str(out), "--horizon", "40",
                 "--hfov", "90"]) == 0
    meta = pd.read_pseudo_depth_meta(out)
    assert meta["focal"] == pytest.approx(80.0)  # 160 px wide, 90 degrees
    depth, conf = pd.read_pseudo_depth(out, "frame1")
    assert depth[100, 80] == pytest.approx(80 * 1.25 / 60, abs=1 / 256)
    assert conf is not None and conf[100, 80] > 0.5


@pytest.mark.parametrize("extra,message", [
    (["--labels", "MISSING"], "label folder not found"),
    ([], "exactly one of --root"),
    (["--labels", "LABELS", "--camera-height", "-1"], "--camera-height must be > 0"),
    (["--labels", "LABELS", "--label-set", "nope"], "nope"),
    (["--labels", "SKY"], "pass --horizon ROW"),
    (["--labels", "LABELS", "--sequence-regex", "("], "--sequence-regex"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    labels, sky = tmp_path / "labels", tmp_path / "sky"
    labels.mkdir()
    sky.mkdir()
    Image.fromarray(road_scene()).save(labels / "a_1.png")
    Image.fromarray(np.full((40, 60), SKY, np.uint8)).save(sky / "b_1.png")
    args = [str(labels) if a == "LABELS" else str(sky) if a == "SKY" else
            str(tmp_path / "missing") if a == "MISSING" else a for a in extra]
    assert main(["pseudo-depth", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    last = re.split(r"[\r\n]+", err.strip())[-1]  # after any progress bar
    assert "Traceback" not in err and err.count("hydranet: error: ") == 1
    assert last.startswith("hydranet: error: ") and message in last


def test_dataset_without_pseudo_depth_json_fails_early(tmp_path):
    root = tmp_path / "camvid"
    _camvid_tree(root, {"S_1": road_scene()})
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="pseudo_depth.json"):
        build_dataset({"type": "camvid", "root": str(root), "split": "train",
                       "pseudo_depth": str(tmp_path / "empty")})


def _camvid_dir() -> Path:
    shared = Path(os.environ.get("HYDRANET_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    path = shared / "data" / "camvid"
    if not path.is_dir():
        message = f"{path} is absent (the reference data lives in ../shared beside the clone)"
        if os.environ.get("HYDRANET_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_camvid_sequence_horizon_is_stable():
    # Real labels: the road-width horizon of 0016E5 agrees with its people's height-vs-row fit.
    camvid_dir = _camvid_dir()
    files = sorted((camvid_dir / "trainannot").glob("0016E5_*.png"))[::4]
    cam = pd.fit_sequence_camera(np.asarray(Image.open(p)) for p in files)
    assert cam.horizon is not None and cam.frames_with_road_horizon >= 10
    assert 165 < cam.horizon < 187
    assert abs(cam.horizon - cam.horizon_objects["pedestrian"]) < 5
