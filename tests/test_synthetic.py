"""Synthetic driving scenes: exact depth, CamVid labels, determinism, drives and the cached dataset."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pybullet")

from hydranet.data.sample import collate, validate_sample  # noqa: E402
from hydranet.data.synthetic import (  # noqa: E402
    MAX_DEPTH,
    Camera,
    SceneRenderer,
    SyntheticDrivingDataset,
    generate_layout,
    render_drive,
    render_scene,
    scene_seed,
)
from hydranet.data.synthetic.layout import BUILDING, LARGE_SCENERY, ROAD, SKY, TREE, Part  # noqa: E402
from hydranet.data.synthetic.renderer import _clip_plane, _trim  # noqa: E402
from hydranet.data.synthetic.scenes import SIDE_STREET_START, side_yaw  # noqa: E402
from hydranet.data.synthetic.shading import sample_params  # noqa: E402

SMALL = (72, 96)


@pytest.fixture(scope="module")
def renderer():
    r = SceneRenderer()
    yield r
    r.close()


def test_road_depth_is_exact_flat_ground_geometry(renderer):
    layout = generate_layout(7)
    cam = Camera(position=(0.0, layout.ego_lane_y, 1.5), height=120, width=160, hfov_deg=60.0)
    render = renderer.render(layout, cam)
    f = cam.focal
    assert np.allclose(cam.intrinsics(), [[f, 0, 80], [0, f, 59], [0, 0, 1]])
    rows = np.arange(cam.height, dtype=np.float64)[:, None] - cam.intrinsics()[1, 2]
    # A level camera h metres above a flat road sees it at z-depth h * f / (row offset).
    expected = np.broadcast_to(np.where(rows > 0, 1.5 * f / np.maximum(rows, 1e-9), np.inf), render.depth.shape)
    road = (render.labels == ROAD) & (rows > 8)
    assert road.sum() > 1000
    rel = np.abs(render.depth[road] - expected[road]) / expected[road]
    assert np.percentile(rel, 99) < 1e-4
    # The back-projected road points lie on z = 0.
    assert np.abs(render.points[road][:, 2]).max() < 1e-3


def test_scene_sample_follows_the_protocol(renderer):
    s = render_scene(3, "clear", SMALL, renderer)
    validate_sample(s)
    assert s["image"].shape == SMALL + (3,) and s["image"].dtype == np.uint8
    assert s["segmentation"].dtype == np.uint8 and s["segmentation"].max() <= 10
    d = s["depth"]
    assert d.dtype == np.float32 and d.min() >= 0 and d.max() <= MAX_DEPTH
    sky = s["segmentation"] == SKY
    assert sky.any() and np.all(d[sky] == 0)  # sky has no depth
    assert (d[~sky] > 0).mean() > 0.9  # nearly everything else is within 80 m
    # Sky is at the top of a level street view, road at the bottom.
    assert sky[0].mean() > sky[-1].mean() and (s["segmentation"][-1] == ROAD).mean() > 0.3


def test_scenes_are_deterministic_by_seed(renderer):
    a = render_scene(11, "rain", SMALL, renderer)
    b = render_scene(11, "rain", SMALL, renderer)
    c = render_scene(12, "rain", SMALL, renderer)
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["depth"], b["depth"])
    assert not np.array_equal(a["segmentation"], c["segmentation"])


def test_drive_keeps_one_street_across_conditions(renderer):
    drive = render_drive(seed=1, frames=3, size=SMALL, renderer=renderer)
    assert list(drive) == ["clear", "rain", "fog", "night"]
    for i in range(3):
        # Same street and camera: identical labels and depth, different pictures.
        assert np.array_equal(drive["clear"][i]["segmentation"], drive["night"][i]["segmentation"])
        assert np.array_equal(drive["clear"][i]["depth"], drive["fog"][i]["depth"])
        assert not np.array_equal(drive["clear"][i]["image"], drive["fog"][i]["image"])
    # The camera moves forward: the nearest road gets further away... and frames differ.
    assert not np.array_equal(drive["clear"][0]["depth"], drive["clear"][2]["depth"])
    clear = np.mean([f["image"].mean() for f in drive["clear"]])
    night = np.mean([f["image"].mean() for f in drive["night"]])
    assert night < 0.75 * clear


def test_fog_hides_far_things_more_than_near_ones(renderer):
    drive = render_drive(seed=2, conditions=("clear", "fog"), frames=1, size=(120, 160), renderer=renderer)
    clear, fog = drive["clear"][0], drive["fog"][0]
    d = clear["depth"]
    change = np.abs(fog["image"].astype(float) - clear["image"].astype(float)).mean(-1)
    near, far = (d > 0) & (d < 10), d > 40
    assert near.any() and far.any()
    assert change[far].mean() > change[near].mean() + 10


def test_unknown_condition_is_refused():
    with pytest.raises(ValueError, match="unknown condition"):
        sample_params("snow", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown condition"):
        SyntheticDrivingDataset(2, conditions=("clear", "hail"))


def test_dataset_cycles_conditions_caches_and_collates(tmp_path):
    ds = SyntheticDrivingDataset(3, seed=5, conditions=("clear", "night"), size=SMALL, cache_dir=tmp_path)
    assert len(ds) == 3
    first = [ds[i] for i in range(3)]
    assert [s["condition"] for s in first] == ["clear", "night", "clear"]
    files = sorted(tmp_path.rglob("*.npz"))
    assert len(files) == 3
    again = SyntheticDrivingDataset(3, seed=5, conditions=("clear", "night"), size=SMALL, cache_dir=tmp_path)
    for a, b in zip(first, (again[i] for i in range(3))):
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["depth"], b["depth"])
        assert a["name"] == b["name"]
    files[0].write_bytes(b"garbage")  # a damaged cache entry is rendered again
    assert np.array_equal(again[0]["image"], first[0]["image"])
    batch = collate(first)
    assert batch["image"].shape == (3, 3) + SMALL and batch["has_depth"].all()
    with pytest.raises(IndexError):
        ds[3]


def test_side_camera_sees_exact_ground_on_both_sides_of_its_axis(renderer):
    # A camera turned 90 degrees to the right looks across the street: the street must exist
    # on both halves of the view (before and behind the camera's x) and the ground is still
    # flat-ground geometry, with depth along the turned optical axis.
    layout = generate_layout(7, start=SIDE_STREET_START)
    cam = Camera(position=(0.0, layout.ego_lane_y, 1.5), yaw=np.radians(-90.0), height=120, width=160,
                 hfov_deg=60.0)
    render = renderer.render(layout, cam)
    rows = np.arange(cam.height, dtype=np.float64)[:, None] - cam.intrinsics()[1, 2]
    below = np.broadcast_to(rows > 4, render.labels.shape)
    assert (render.labels[below] != SKY).mean() > 0.99  # nothing missing below the horizon
    # The road seen from height h: depth * row offset / f = h, on both halves of the view.
    road = (render.labels == ROAD) & (rows > 8)
    implied = np.where(road, render.depth, 0.0) * rows / cam.focal
    for half in (slice(0, 80), slice(80, 160)):
        assert road[:, half].sum() > 500
    assert np.percentile(np.abs(implied[road] - 1.5), 99) < 1e-4


def test_clip_plane_follows_the_view_and_refuses_what_it_cannot_draw():
    ahead = Camera(position=(3.0, 1.0, 1.5), yaw=np.radians(5.0))
    left = Camera(position=(3.0, 1.0, 1.5), yaw=np.radians(80.0))
    right = Camera(position=(3.0, 1.0, 1.5), yaw=np.radians(-80.0))
    assert _clip_plane(ahead) == (0, 3.8, 1.0)
    assert _clip_plane(left) == (1, 1.8, 1.0)
    assert _clip_plane(right) == (1, pytest.approx(0.2), -1.0)
    with pytest.raises(ValueError, match="cannot be rendered"):
        _clip_plane(Camera(position=(0.0, 0.0, 1.5), yaw=np.radians(45.0), hfov_deg=90.0))
    # A box across the plane keeps the part on the camera's side, exactly.
    box = Part("box", (2.0, 3.0, 1.0), (0.0, 0.0, 1.0), (0.5, 0.5, 0.5), ROAD)
    kept = _trim(box, 1, -1.0, -1.0)  # keep y <= -1
    assert kept.extent(1) == pytest.approx((-3.0, -1.0)) and kept.extent(0) == (-2.0, 2.0)
    assert _trim(box, 0, 2.5, 1.0) is None and _trim(box, 0, -5.0, 1.0) is box


def test_side_camera_share_and_angles():
    yaws = np.degrees([side_yaw(scene_seed(0, i), 0.5) for i in range(400)])
    turned = yaws[yaws != 0]
    assert 0.4 < len(turned) / len(yaws) < 0.6
    assert np.all((np.abs(turned) >= 35) & (np.abs(turned) <= 100))
    assert (turned > 0).any() and (turned < 0).any()
    assert all(side_yaw(scene_seed(0, i), 0.0) == 0.0 for i in range(50))
    with pytest.raises(ValueError, match="side_cameras"):
        SyntheticDrivingDataset(2, side_cameras=1.5)


def test_side_camera_scenes_render_and_cache_apart_from_forward_ones(tmp_path):
    forward = SyntheticDrivingDataset(2, seed=5, conditions=("clear",), size=SMALL, cache_dir=tmp_path)
    side = SyntheticDrivingDataset(2, seed=5, conditions=("clear",), size=SMALL, cache_dir=tmp_path, side_cameras=1.0)
    a, b = forward[0], side[0]
    assert not np.array_equal(a["image"], b["image"])
    assert len({p.parent for p in tmp_path.rglob("*.npz")}) == 2
    validate_sample(b)
    assert (b["depth"] > 0).mean() > 0.5


def test_large_scenery_grows_buildings_and_trees_only():
    def sizes(layout, label, shape):  # a box's height or a sphere's radius
        return np.array([p.size[2] * 2 if shape == "box" else p.size[0]
                         for p in layout.parts if p.label == label and p.shape == shape])

    for seed in (1, 2, 3):
        small, large = generate_layout(seed), generate_layout(seed, large_scenery=True)
        # The same street, part for part; only building heights and tree sizes differ.
        assert len(small.parts) == len(large.parts)
        assert [p.position[:2] for p in small.parts if p.label not in (BUILDING, TREE)] == \
            [p.position[:2] for p in large.parts if p.label not in (BUILDING, TREE)]
        grown = sizes(large, BUILDING, "box") / sizes(small, BUILDING, "box")
        crowns = sizes(large, TREE, "sphere") / sizes(small, TREE, "sphere")
        assert grown.min() >= 1.0 - 1e-9 and grown.max() <= LARGE_SCENERY[0] + 1e-9 and grown.max() > 1.5
        assert crowns.min() >= 1.0 - 1e-9 and crowns.max() <= LARGE_SCENERY[1] + 1e-9 and crowns.max() > 1.2
    assert sizes(generate_layout(1, large_scenery=True), BUILDING, "box").max() > 40  # taller than any small one
    with pytest.raises(ValueError, match="large_scenery"):
        SyntheticDrivingDataset(2, large_scenery=2.0)


def test_sensor_noise_scales_and_vanishes():
    from hydranet.data.synthetic.shading import _sensor

    params = sample_params("clear", np.random.default_rng(0))
    radiance = np.full((64, 64, 3), 0.5 / params.exposure, np.float32)  # mid grey after exposure

    def frames(noise: float) -> tuple[np.ndarray, np.ndarray]:
        a, b = (_sensor(radiance, params, np.random.default_rng(i), noise).astype(np.float32) for i in (1, 2))
        return a, b

    a, b = frames(0.0)
    np.testing.assert_array_equal(a, b)  # nothing new in the next frame
    full = float(np.std(np.subtract(*frames(1.0)))) / np.sqrt(2)
    quarter = float(np.std(np.subtract(*frames(0.25)))) / np.sqrt(2)
    # shot + read noise of the clean frame (vignetted mid grey): ~7 grey levels; a quarter ~ 2
    expected = 255 * float(np.sqrt(np.mean(a / 255 * 0.002 + (params.noise / 255) ** 2)))
    assert abs(full - expected) < 0.1 * expected
    assert abs(quarter - expected / 4) < 0.15 * expected / 4
