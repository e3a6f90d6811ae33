"""Raw outputs (label PNG, KITTI 16-bit depth, .npy, sidecar) and 3D (intrinsics, PLY, BEV)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hydranet.errors import InputError
from hydranet.inference.pointcloud import (Intrinsics, backproject, bev_image, parse_intrinsics,
                                           read_kitti_calib, read_ply, write_ply)
from hydranet.inference.raw import (depth_to_uint16, read_depth_png, read_labels_png, save_depth_npy,
                                    save_depth_png, save_labels_png, sidecar, write_sidecar)
from hydranet.labels import KITTI6

# A calib_cam_to_cam.txt in the KITTI raw-data layout (values of the 2011_09_26 drives).
KITTI_CALIB = """calib_time: 09-Jan-2012 13:57:47
corner_dist: 9.950000e-02
S_00: 1.392000e+03 5.120000e+02
K_00: 9.842439e+02 0.000000e+00 6.900000e+02 0.000000e+00 9.808141e+02 2.331966e+02 0.000000e+00 0.000000e+00 1.000000e+00
S_rect_00: 1.242000e+03 3.750000e+02
P_rect_00: 7.215377e+02 0.000000e+00 6.095593e+02 0.000000e+00 0.000000e+00 7.215377e+02 1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
S_rect_02: 1.242000e+03 3.750000e+02
P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03
"""


def test_label_png_round_trip(tmp_path):
    labels = np.random.default_rng(0).integers(0, 6, (5, 7)).astype(np.uint8)
    back = read_labels_png(save_labels_png(tmp_path / "l.png", labels))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, labels)
    many = np.array([[0, 299]], np.int32)
    back = read_labels_png(save_labels_png(tmp_path / "m.png", many, num_classes=300))
    assert back.dtype == np.uint16 and back.tolist() == [[0, 299]]


def test_depth_png_is_kitti_metres_times_256(tmp_path):
    depth = np.array([[0.0, 1.0, 12.345, 80.0], [255.99, 300.0, np.nan, -1.0]], np.float32)
    np.testing.assert_array_equal(depth_to_uint16(depth), [[0, 256, 3160, 20480], [65533, 65535, 0, 0]])
    back = read_depth_png(save_depth_png(tmp_path / "d.png", depth))
    assert back.dtype == np.float32
    ok = np.isfinite(depth) & (depth >= 0) & (depth < 255.99)
    assert np.abs(back[ok] - depth[ok]).max() <= 1 / 512 + 1e-6
    np.testing.assert_array_equal(np.load(save_depth_npy(tmp_path / "d.npy", depth)), depth)
    with pytest.raises(InputError):
        read_depth_png(save_labels_png(tmp_path / "l.png", np.zeros((2, 2), np.uint8)))


def test_sidecar_describes_classes_and_units(tmp_path):
    data = sidecar(KITTI6.class_names, KITTI6.palette_array(), model="kitti6", label_set="kitti6",
                   source="a.png", image_size=(64, 96), files={"labels": "a_raw_labels.png"})
    read = json.loads(write_sidecar(tmp_path / "a.json", data).read_text())
    assert read["classes"][5] == {"index": 5, "name": "car", "color": [64, 0, 128]}
    assert read["depth_scale"] == 256 and "metres * 256" in read["units"]["depth_png"]
    assert read["image_size"] == {"height": 64, "width": 96}


def test_parse_intrinsics():
    assert parse_intrinsics("721.5,721.5,609.6,172.9") == Intrinsics(721.5, 721.5, 609.6, 172.9)
    for bad in ("1,2,3", "a,b,c,d", "0,1,2,3"):
        with pytest.raises(InputError, match="fx,fy,cx,cy"):
            parse_intrinsics(bad)


def test_read_kitti_calibration_files(tmp_path):
    raw = tmp_path / "calib_cam_to_cam.txt"
    raw.write_text(KITTI_CALIB)
    k = read_kitti_calib(raw)
    assert (k.fx, k.fy, k.cx, k.cy, k.size) == (721.5377, 721.5377, 609.5593, 172.854, (375, 1242))
    # a KITTI crop of nearly the same size keeps the values; a half-size copy scales them
    assert k.for_image(370, 1226) is k
    half = k.for_image(187, 621)
    assert half.fx == pytest.approx(721.5377 * 621 / 1242) and half.fy == pytest.approx(721.5377 * 187 / 375)
    odometry = tmp_path / "calib.txt"
    odometry.write_text("P0: 7.18856e+02 0 6.071928e+02 0 0 7.18856e+02 1.852157e+02 0 0 0 1 0\n"
                        "P2: 7.0e+02 0 6.0e+02 4.5e+01 0 7.1e+02 1.8e+02 0 0 0 1 0\n")
    assert read_kitti_calib(odometry) == Intrinsics(700.0, 710.0, 600.0, 180.0)
    empty = tmp_path / "nothing.txt"
    empty.write_text("hello: world\n")
    with pytest.raises(InputError, match="nothing.txt: no usable P_rect_02"):
        read_kitti_calib(empty)


def test_backproject_by_hand():
    k = Intrinsics(fx=100.0, fy=50.0, cx=2.0, cy=1.0)
    depth = np.array([[10.0, 0.0, 10.0, 0.0, 4.0], [5.0, np.nan, 20.0, 1.0, 2.0]], np.float32)
    points, pixels = backproject(depth, k)
    assert len(points) == 7 and pixels.tolist() == [0, 2, 4, 5, 7, 8, 9]
    np.testing.assert_allclose(points[1], [0.0, -0.2, 10.0])        # u=cx, v=0: y=(0-1)*10/50
    np.testing.assert_allclose(points[2], [2 * 4 / 100, -4 / 50, 4.0])
    np.testing.assert_allclose(points[4], [0.0, 0.0, 20.0])         # the principal point
    assert len(backproject(depth, k, max_depth=10)[0]) == 6


def test_ply_round_trip(tmp_path):
    points = np.array([[0, 1, 2], [3.5, -4, 5]], np.float32)
    colors = np.array([[255, 0, 0], [0, 128, 255]], np.uint8)
    path = write_ply(tmp_path / "p.ply", points, colors, np.array([2, 5]))
    assert path.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    data = read_ply(path)
    assert len(data) == 2 and data.dtype.names == ("x", "y", "z", "red", "green", "blue", "label")
    np.testing.assert_array_equal(np.stack([data["x"], data["y"], data["z"]], 1), points)
    assert data["blue"].tolist() == [0, 255] and data["label"].tolist() == [2, 5]


def test_bev_places_points_and_keeps_the_highest():
    points = np.array([[0.0, 1.5, 10.0],    # on the road, 10 m ahead
                       [0.0, -1.0, 10.0],   # higher point in the same cell
                       [-20.0, 0.0, 40.0],  # 20 m left, 40 m ahead
                       [0.0, 0.0, 80.5]], np.float32)  # just beyond the range: dropped
    colors = np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]], np.uint8)
    bev = bev_image(points, colors, forward=(0.0, 80.0), size=80)  # 1 m per pixel, 80x80
    assert bev.shape == (80, 80, 3)
    assert bev[70, 40].tolist() == [2, 2, 2]
    assert bev[40, 20].tolist() == [3, 3, 3]
    assert not (bev == 4).all(axis=2).any() and not (bev == 1).all(axis=2).any()


def test_video_predictions_are_made_at_the_size_the_outputs_need(tmp_path):
    from fractions import Fraction

    from hydranet.inference.outputs import OutputOptions, VideoSink, video_paths

    def size_for(opts, shape=(360, 480)):
        return VideoSink(video_paths(tmp_path / "v", opts), Fraction(10), opts).prediction_size(shape)

    # A panel alone shows each picture at half the frame's height: predict at that size.
    assert size_for(OutputOptions()) == (180, 240)
    assert size_for(OutputOptions(), (375, 1242)) == (188, 623)  # round(1242 * 188 / 375)
    assert size_for(OutputOptions(panel_height=90)) == (90, 120)
    # 4K and 8K videos: half their height would make panels 7,680 and 15,360 pixels wide; four
    # pictures stay within 4000 (H.264 level 5.1, what most hardware decoders play, is 4096).
    assert size_for(OutputOptions(), (1080, 1920)) == (540, 960)
    assert size_for(OutputOptions(), (2160, 3840)) == (562, 999)
    assert size_for(OutputOptions(), (4320, 7680)) == (562, 999)
    # Full frames for anything shown or saved at the frame's resolution.
    assert size_for(OutputOptions(panel_height=360)) == (360, 480)
    assert size_for(OutputOptions(save=("panel", "raw"))) == (360, 480)
    assert size_for(OutputOptions(save=("overlay",))) == (360, 480)
    assert size_for(OutputOptions(pointcloud=True, intrinsics=Intrinsics(400, 400, 240, 180))) == (360, 480)


def test_sky_is_left_out_of_point_clouds_and_top_views(tmp_path):
    from hydranet.inference.outputs import OutputOptions, write_image_outputs
    from hydranet.inference.predictor import Prediction

    labels = np.full((8, 10), KITTI6.class_names.index("road"), np.uint8)
    labels[:3] = KITTI6.class_names.index("sky")  # the top three rows: sky, "30 m" away
    depth = np.where(labels == 0, 30.0, 5.0).astype(np.float32)
    pred = Prediction(image=np.zeros((8, 10, 3), np.uint8), labels=labels, depth=depth,
                      class_names=list(KITTI6.class_names), palette=KITTI6.palette_array())
    paths = {"pointcloud": tmp_path / "a.ply", "bev": tmp_path / "a_bev.png"}
    write_image_outputs(pred, paths, OutputOptions(save=(), pointcloud=True, bev=True,
                                                   intrinsics=Intrinsics(10.0, 10.0, 4.5, 3.5)))
    cloud = read_ply(paths["pointcloud"])
    assert len(cloud) == 50 and set(cloud["label"].tolist()) == {KITTI6.class_names.index("road")}
    assert np.all(cloud["z"] == 5.0)


def test_camera_from_a_horizontal_field_of_view_by_hand():
    from hydranet.inference.camera import from_hfov

    k = from_hfov(90.0, 360, 480)  # tan 45 = 1: fx = 480 / 2
    assert (k.fx, k.fy, k.cx, k.cy) == pytest.approx((240.0, 240.0, 239.5, 179.5)) and k.size == (360, 480)
    assert from_hfov(60.0, 375, 1242).fx == pytest.approx(621 * 3 ** 0.5)  # 621 / tan 30
    for bad in (0.0, 171.0, float("nan")):
        with pytest.raises(InputError, match="give 1 to 170 degrees"):
            from_hfov(bad, 10, 10)
