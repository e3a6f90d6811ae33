"""``hydranet predict`` end to end on images and videos the tests make."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from fractions import Fraction

import cv2
import numpy as np
import pytest
from PIL import Image
from predict_helpers import H, W, make_video, scene, video_info

import hydranet
from hydranet.cli.main import main
from hydranet.inference.media import read_image
from hydranet.inference.pointcloud import read_ply
from hydranet.inference.predictor import Predictor
from hydranet.inference.raw import read_depth_png, read_labels_png
from hydranet.labels import KITTI6

# Other jobs share the 2 cores: these tests run with one intra-op thread.
pytestmark = pytest.mark.usefixtures("one_thread")

ALL = "panel,overlay,segmentation,depth,raw"


def predict(*args: str) -> int:
    return main(["predict", *map(str, args), "--backend", "torch"])


def decode(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"{path} does not decode"
    return image


def test_images_in_a_folder_every_output(tmp_path, small_weights, capsys):
    src = tmp_path / "in"
    src.mkdir()
    images = {"a": scene(seed=1), "b": scene(48, 80, seed=2)}
    Image.fromarray(images["a"]).save(src / "a.png")
    Image.fromarray(images["b"]).save(src / "b.bmp")
    (src / "notes.txt").write_text("not an image, ignored inside folders")
    out = tmp_path / "out"
    assert predict(src, "--weights", small_weights, "--out", out, "--save", ALL) == 0
    stdout = capsys.readouterr().out
    assert "done: 2 image(s), 0 video(s), 2 frames" in stdout and "ms/frame" in stdout
    predictor = Predictor(small_weights, backend="torch")
    for name, image in images.items():
        h, w = image.shape[:2]
        for kind in ("overlay", "segmentation", "depth"):
            assert decode(out / f"{name}_{kind}.jpg").shape == (h, w, 3)
        panel = decode(out / f"{name}_panel.jpg")
        assert panel.shape[1] == 4 * w + 5 * 4 and panel.shape[0] > h
        pred = predictor.predict(image)
        labels = read_labels_png(out / f"{name}_raw_labels.png")
        np.testing.assert_array_equal(labels, pred.labels)
        depth16 = read_depth_png(out / f"{name}_raw_depth.png")
        npy = np.load(out / f"{name}_raw_depth.npy")
        assert npy.dtype == np.float32 and npy.shape == (h, w)
        np.testing.assert_allclose(npy, pred.depth, atol=1e-5)
        assert np.abs(depth16 - pred.depth).max() <= 1 / 256  # KITTI PNG within 1/256 m
        assert pred.depth.max() > 1.0  # the round trip covered real metres
        # JPEG, quality 95, full colour resolution: the class colours within a few levels.
        jpeg = decode(out / f"{name}_segmentation.jpg")[:, :, ::-1].astype(int)
        assert np.abs(jpeg - pred.colorize()).mean() < 4
        meta = json.loads((out / f"{name}_raw.json").read_text())
        assert meta["classes"][2]["name"] == "road" and meta["files"]["depth_png"] == f"{name}_raw_depth.png"
        assert meta["image_size"] == {"height": h, "width": w}
    assert not (out / "notes_panel.jpg").exists()


def test_video_mp4_and_gif_keep_rate_and_frame_count(tmp_path, small_weights, capsys):
    make_video(tmp_path / "drive.mp4", 8, fps=Fraction(25))
    out = tmp_path / "out"
    assert predict(tmp_path / "drive.mp4", "--weights", small_weights, "--out", out,
                   "--save", "panel,overlay,raw", "--video-format", "mp4,gif") == 0
    assert video_info(out / "drive_overlay.mp4") == (8, Fraction(25), (H, W))
    count, rate, size = video_info(out / "drive_overlay.gif")
    assert (count, rate, size) == (8, 25, (H, W))
    panel_count, _, panel_size = video_info(out / "drive_panel.mp4")
    assert panel_count == 8 and panel_size[1] == 4 * W // 2 + 5 * 4  # video panels: half scale
    assert video_info(out / "drive_panel.gif")[2][1] == panel_size[1]
    raw = sorted(p.name for p in (out / "drive_raw").iterdir())
    assert len(raw) == 24 and raw[:3] == ["000000_depth.npy", "000000_depth.png", "000000_labels.png"]
    meta = json.loads((out / "drive_raw.json").read_text())
    assert meta["frames"] == list(range(8)) and meta["fps"] == 25
    # the raw frames are the predictions of the decoded frames
    with_frames = Predictor(small_weights, backend="torch")
    from hydranet.inference.media import VideoReader
    with VideoReader(tmp_path / "drive.mp4") as reader:
        frame3 = [f for i, f in reader.frames() if i == 3][0]
    pred = with_frames.predict(frame3)
    np.testing.assert_array_equal(read_labels_png(out / "drive_raw" / "000003_labels.png"), pred.labels)
    assert np.abs(read_depth_png(out / "drive_raw" / "000003_depth.png") - pred.depth).max() <= 1 / 256
    stdout = capsys.readouterr().out
    assert "drive.mp4: 8 frames at 25 fps" in stdout and "frames/s" in stdout


def test_every_nth_frame(tmp_path, small_weights):
    make_video(tmp_path / "v.mkv", 10, fps=Fraction(30))
    out = tmp_path / "out"
    assert predict(tmp_path / "v.mkv", "--weights", small_weights, "--out", out,
                   "--save", "segmentation", "--every", "3") == 0
    assert video_info(out / "v_segmentation.mp4") == (4, Fraction(10), (H, W))


def test_corrupt_file_among_good_ones(tmp_path, small_weights, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(scene(seed=1)).save(src / "good1.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    Image.fromarray(scene(seed=2)).save(src / "good2.jpg")
    (src / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 300)
    out = tmp_path / "out"
    code = predict(src / "good1.png", src / "broken.png", src / "missing.png", src / "clip.mp4",
                   src / "good2.jpg", "--weights", small_weights, "--out", out)
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert f"hydranet: error: {src / 'broken.png'}: cannot read image (Truncated File Read)" in err
    assert f"hydranet: error: {src / 'missing.png'}: no such file or folder" in err
    assert any(line.startswith(f"hydranet: error: {src / 'clip.mp4'}: not a readable video") for line in err)
    assert err[-1] == "hydranet: error: 3 input(s) failed; see the messages above"
    assert decode(out / "good1_panel.jpg").ndim == 3 and decode(out / "good2_panel.jpg").ndim == 3
    assert sorted(p.name for p in out.iterdir()) == ["good1_panel.jpg", "good2_panel.jpg"]


def test_truncated_video_keeps_the_frames_decoded(tmp_path, small_weights, capsys):
    full = tmp_path / "full.mkv"
    make_video(full, 30)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out"
    assert predict(cut, "--weights", small_weights, "--out", out, "--save", "overlay,raw") == 1
    err = capsys.readouterr().err
    assert f"hydranet: error: {cut}: video ends early: decoded" in err
    written, _, _ = video_info(out / "cut_overlay.mp4")
    assert 0 < written < 30
    assert f"decoded {written} of 30 frames" in err
    meta = json.loads((out / "cut_raw.json").read_text())
    assert meta["frames"] == list(range(written))


def test_exif_16_bit_and_greyscale_inputs(tmp_path, small_weights):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(scene()).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    cv2.imwrite(str(tmp_path / "deep.png"), (scene().astype(np.uint16) * 257)[:, :, ::-1])
    Image.fromarray(scene()[:, :, 1]).save(tmp_path / "grey.png")
    out = tmp_path / "out"
    assert predict(tmp_path / "rotated.jpg", tmp_path / "deep.png", tmp_path / "grey.png",
                   "--weights", small_weights, "--out", out, "--save", "overlay,raw") == 0
    assert decode(out / "rotated_overlay.jpg").shape == (W, H, 3)
    assert read_labels_png(out / "rotated_raw_labels.png").shape == (W, H)
    assert decode(out / "deep_overlay.jpg").shape == (H, W, 3)
    # the 16-bit copy of the image predicts exactly what the 8-bit image does
    predictor = Predictor(small_weights, backend="torch")
    np.testing.assert_array_equal(read_labels_png(out / "deep_raw_labels.png"),
                                  predictor.predict(scene()).labels)
    grey = read_image(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_labels_png(out / "grey_raw_labels.png"), predictor.predict(grey).labels)


def test_refuses_to_overwrite(tmp_path, small_weights, capsys):
    Image.fromarray(scene()).save(tmp_path / "a.png")
    out = tmp_path / "out"
    args = (tmp_path / "a.png", "--weights", small_weights, "--out", out, "--save", "overlay")
    assert predict(*args) == 0
    before = (out / "a_overlay.jpg").stat().st_mtime_ns
    capsys.readouterr()
    assert predict(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"hydranet: error: {out / 'a_overlay.jpg'} already exists; pass --overwrite to "
                   "replace, --skip-existing to pass over inputs already done, or choose another --out")
    assert (out / "a_overlay.jpg").stat().st_mtime_ns == before
    assert predict(*args, "--overwrite") == 0


def test_skip_existing_finishes_an_interrupted_folder(tmp_path, small_weights, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i, name in enumerate("abc"):
        Image.fromarray(scene(seed=i)).save(src / f"{name}.png")
    args = (src, "--weights", small_weights, "--out", out, "--save", "overlay,depth")
    assert predict(*args) == 0
    # As if the run had stopped after a: b and c not done at all.
    for name in "bc":
        for kind in ("overlay", "depth"):
            (out / f"{name}_{kind}.jpg").unlink()
    kept = (out / "a_overlay.jpg").stat().st_mtime_ns
    capsys.readouterr()
    assert predict(*args, "--skip-existing") == 0
    stdout = capsys.readouterr().out
    assert "skipped 1 input(s) whose outputs all exist (--skip-existing)" in stdout
    assert "done: 2 image(s)" in stdout
    assert (out / "a_overlay.jpg").stat().st_mtime_ns == kept
    for name in "bc":
        assert decode(out / f"{name}_depth.jpg").shape[:2] == scene().shape[:2]
    # Everything done: nothing to do, and that is no error.
    assert predict(*args, "--skip-existing") == 0
    assert "skipped 3 input(s)" in capsys.readouterr().out
    # An input with only some of its outputs is named, and nothing is replaced.
    (out / "c_depth.jpg").unlink()
    c_overlay = (out / "c_overlay.jpg").stat().st_mtime_ns
    assert predict(*args, "--skip-existing") == 2
    assert f"{out / 'c_overlay.jpg'} already exists" in capsys.readouterr().err
    assert (out / "c_overlay.jpg").stat().st_mtime_ns == c_overlay
    with pytest.raises(SystemExit) as exit_info:  # one or the other
        predict(*args, "--skip-existing", "--overwrite")
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_point_cloud_and_bev(tmp_path, small_weights):
    Image.fromarray(scene()).save(tmp_path / "a.png")
    calib = tmp_path / "calib.txt"
    calib.write_text("P2: 80.0 0 47.5 0 0 80.0 31.5 0 0 0 1 0\n")
    out = tmp_path / "out"
    assert predict(tmp_path / "a.png", "--weights", small_weights, "--out", out, "--save", "raw",
                   "--pointcloud", "--bev", "--calib", calib) == 0
    depth = np.load(out / "a_raw_depth.npy")
    cloud = read_ply(out / "a.ply")
    labels = read_labels_png(out / "a_raw_labels.png")
    # Every pixel with a depth becomes a point, except sky (KITTI-6 class 0; test_predict_outputs
    # has a picture with sky), whose depth is no distance.
    sky = labels == KITTI6.class_names.index("sky")
    assert len(cloud) == int((np.isfinite(depth) & (depth > 0) & ~sky).sum())
    # the point through the principal point's pixel has x = y = 0 and z = its depth
    valid = np.flatnonzero((np.isfinite(depth) & (depth > 0) & ~sky).ravel())
    i = int(np.searchsorted(valid, 31 * W + 47))
    np.testing.assert_allclose([cloud["x"][i], cloud["z"][i]], [-0.5 * depth[31, 47] / 80, depth[31, 47]], rtol=1e-5)
    assert cloud["label"][i] == labels[31, 47]
    assert decode(out / "a_bev.jpg").shape == (600, 600, 3)
    assert predict(tmp_path / "a.png", "--weights", small_weights, "--out", tmp_path / "o2",
                   "--pointcloud", "--point-colors", "image", "--intrinsics", "80,80,47.5,31.5") == 0
    rgb = lambda c: np.stack([c["red"], c["green"], c["blue"]], axis=1)  # noqa: E731
    np.testing.assert_array_equal(rgb(cloud), KITTI6.palette_array()[labels.ravel()[valid]])
    image_cloud = read_ply(tmp_path / "o2" / "a.ply")
    np.testing.assert_array_equal(rgb(image_cloud), scene().reshape(-1, 3)[valid])


def _camera_aware_with_an_exif_photo(small_weights, tmp_path):
    """The small model made camera-aware (canonical focal 60 px), and a.png whose EXIF says
    FocalLengthIn35mmFilm 50: fx = 50 * hypot(96, 64) / hypot(36, 24) = 133.3."""
    model = hydranet.load_model(small_weights)
    aware = hydranet.HydraNet(dataclasses.replace(model.config, canonical_focal=60.0)).eval()
    aware.load_state_dict(model.state_dict())
    weights = hydranet.save_weights(aware, tmp_path / "aware.safetensors")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 50
    Image.fromarray(scene()).save(tmp_path / "a.png", exif=exif.tobytes())
    return weights


def test_exif_focal_length_is_the_camera_when_none_is_given(tmp_path, small_weights, capsys):
    weights = _camera_aware_with_an_exif_photo(small_weights, tmp_path)
    fx = 50 * float(np.hypot(W, H) / np.hypot(36, 24))

    def depth(out: str, *options: str) -> np.ndarray:
        assert predict(tmp_path / "a.png", "--weights", weights, "--out", tmp_path / out, "--save", "raw",
                       *options) == 0
        return np.load(tmp_path / out / "a_raw_depth.npy")

    from_exif = depth("exif")
    stdout = capsys.readouterr().out
    assert "depth uses the focal length an image's EXIF or a video's metadata states, else a 60 degree" in stdout
    assert "camera: from the EXIF focal length for 1 of 1 image(s)" in stdout
    stated = depth("stated", "--intrinsics", f"{fx!r},{fx!r},{(W - 1) / 2},{(H - 1) / 2}")
    np.testing.assert_allclose(from_exif, stated, rtol=1e-6)
    assumed = depth("assumed", "--ignore-exif")
    assert "camera: from the EXIF" not in capsys.readouterr().out
    # 60 degrees is fx 83.1 for 96 px: the network sees the image at another size, depth differs.
    assert not np.allclose(assumed, from_exif, rtol=0.01)
    # The raw sidecar says which camera each depth is metric for.
    cameras = {out: json.loads((tmp_path / out / "a_raw.json").read_text())["camera"]
               for out in ("exif", "stated", "assumed")}
    assert cameras["exif"]["source"].startswith("EXIF") and cameras["exif"]["fx"] == pytest.approx(fx, abs=1e-3)
    assert cameras["stated"]["source"].startswith("stated") and cameras["stated"]["cx"] == (W - 1) / 2
    assert cameras["assumed"] == {"source": "assumed", "horizontal_fov_deg": 60.0}
    # Weights that are not camera-aware do not use the camera for depth, and say nothing of it.
    assert predict(tmp_path / "a.png", "--weights", small_weights, "--out", tmp_path / "plain", "--save", "raw") == 0
    assert "camera" not in json.loads((tmp_path / "plain" / "a_raw.json").read_text())
    # A point cloud from the EXIF camera is the one the same camera stated gives.
    for out, options in (("pc_exif", ()), ("pc_stated", ("--intrinsics", f"{fx!r},{fx!r},{(W - 1) / 2},{(H - 1) / 2}"))):
        assert predict(tmp_path / "a.png", "--weights", weights, "--out", tmp_path / out, "--pointcloud",
                       *options) == 0
    exif_cloud, stated_cloud = read_ply(tmp_path / "pc_exif" / "a.ply"), read_ply(tmp_path / "pc_stated" / "a.ply")
    for axis in ("x", "y", "z"):
        np.testing.assert_allclose(exif_cloud[axis], stated_cloud[axis], rtol=1e-5, atol=1e-6)
    # An input without a camera stops the run before any work, naming it.
    Image.fromarray(scene()).save(tmp_path / "b.png")
    code = predict(tmp_path / "a.png", tmp_path / "b.png", "--weights", weights, "--out", tmp_path / "pc_mixed",
                   "--pointcloud")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "b.png states no focal length" in err
    assert not (tmp_path / "pc_mixed" / "a.ply").exists()


def test_a_stated_field_of_view_is_the_camera_of_every_input(tmp_path, small_weights, capsys):
    # --hfov: what a dash-cam's owner knows. It is the camera of images and videos alike,
    # for depth and for point clouds, and it wins over an image's EXIF.
    weights = _camera_aware_with_an_exif_photo(small_weights, tmp_path)
    make_video(tmp_path / "v.mp4", 3)
    fx = float((W / 2) / np.tan(np.radians(100) / 2))  # 100 degrees over 96 px: 40.3 px

    def run(out: str, *options: str) -> str:
        assert predict(tmp_path / "a.png", tmp_path / "v.mp4", "--weights", weights, "--out", tmp_path / out,
                       "--save", "raw", "--pointcloud", *options) == 0
        return capsys.readouterr().out

    stdout = run("hfov", "--hfov", "100")
    assert "camera: a 100 degree horizontal field of view (--hfov)" in stdout and "EXIF" not in stdout
    run("stated", "--intrinsics", f"{fx!r},{fx!r},{(W - 1) / 2},{(H - 1) / 2}")
    for name in ("a_raw_depth.npy", "v_raw/000000_depth.npy"):
        np.testing.assert_allclose(np.load(tmp_path / "hfov" / name), np.load(tmp_path / "stated" / name), rtol=1e-6)
    for name in ("a.ply", "v_pointcloud/000001.ply"):
        hfov_cloud, stated_cloud = read_ply(tmp_path / "hfov" / name), read_ply(tmp_path / "stated" / name)
        for axis in ("x", "y", "z"):
            np.testing.assert_allclose(hfov_cloud[axis], stated_cloud[axis], rtol=1e-5, atol=1e-6)
    camera = json.loads((tmp_path / "hfov" / "a_raw.json").read_text())["camera"]
    assert camera == {"source": "stated (--hfov)", "horizontal_fov_deg": 100.0}
    # The same in Python.
    image = scene()
    by_fov = Predictor(weights, backend="torch", hfov=100).predict(image).depth
    by_k = Predictor(weights, backend="torch").predict(image, intrinsics=(fx, fx, (W - 1) / 2, (H - 1) / 2)).depth
    np.testing.assert_allclose(by_fov, by_k, rtol=1e-6)
    assert not np.allclose(by_fov, Predictor(weights, backend="torch").predict(image).depth, rtol=0.01)
    assert predict(tmp_path / "a.png", "--weights", weights, "--out", tmp_path / "bad", "--hfov", "180") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--hfov 180: give 1 to 170 degrees" in err


def test_usage_errors_are_one_line(tmp_path, small_weights, capsys):
    Image.fromarray(scene()).save(tmp_path / "a.png")
    cases = [
        (["--size", "big"], "--size 'big': expected HEIGHTxWIDTH"),
        (["--depth-range", "80,0"], "HI must be larger than LO"),
        (["--depth-range", "0,inf"], "LO and HI must be finite metres"),
        (["--save", "panel,sparkles"], "--save 'panel,sparkles': choose one or more of"),
        (["--pointcloud"], "--pointcloud and --bev need the camera"),
        (["--video-format", "avi"], "--video-format 'avi'"),
    ]
    for extra, message in cases:
        code = predict(tmp_path / "a.png", "--weights", small_weights, "--out", tmp_path / "o", *extra)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, (extra, err)


def test_default_weights_missing_says_to_pass_weights(tmp_path, monkeypatch, capsys):
    # An installation without the bundled file (e.g. a wheel built without package data).
    import hydranet.checkpoints.loader as loader

    monkeypatch.setattr(loader, "bundled_path", lambda name: None)
    Image.fromarray(scene()).save(tmp_path / "a.png")
    assert predict(tmp_path / "a.png", "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hydranet: error: ") and "pass --weights" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "a_panel.jpg").exists()


def test_help_teaches_with_examples():
    proc = subprocess.run([sys.executable, "-m", "hydranet", "predict", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    for text in ("--save", "--video-format", "--every", "--pointcloud", "examples:", "metres x 256"):
        assert text in proc.stdout


def test_panel_height(tmp_path, small_weights):
    Image.fromarray(scene()).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert predict(tmp_path / "a.png", "--weights", small_weights, "--out", out, "--panel-height", "32") == 0
    assert decode(out / "a_panel.jpg").shape[1] == 4 * 48 + 5 * 4  # 96x64 tiles shown at 48x32


def test_output_folder_inside_the_input_folder_is_not_read_back(tmp_path, small_weights):
    Image.fromarray(scene()).save(tmp_path / "a.png")
    out = tmp_path / "results"
    for flags in ((), ("--overwrite",)):
        assert predict(tmp_path, "--recursive", "--weights", small_weights, "--out", out,
                       "--save", "overlay", *flags) == 0
    assert sorted(p.name for p in out.rglob("*")) == ["a_overlay.jpg"]


def test_size_changes_the_network_input_not_the_output_size(tmp_path, small_weights, input_sizes):
    Image.fromarray(scene(seed=3)).save(tmp_path / "a.png")
    shapes = input_sizes
    out = tmp_path / "out"
    assert predict(tmp_path / "a.png", "--weights", small_weights, "--out", out, "--save", "overlay,raw",
                   "--size", "32x48") == 0
    assert shapes == [(32, 48)]  # the network saw the picture at 32x48 ...
    labels, depth = read_labels_png(out / "a_raw_labels.png"), np.load(out / "a_raw_depth.npy")
    # ... and the results are at the picture's 64x96.
    assert labels.shape == depth.shape == (H, W) and decode(out / "a_overlay.jpg").shape == (H, W, 3)
    sized = Predictor(small_weights, size=(32, 48), backend="torch").predict(scene(seed=3))
    np.testing.assert_array_equal(labels, sized.labels)
    np.testing.assert_allclose(depth, sized.depth, atol=1e-5)
    native = Predictor(small_weights, backend="torch").predict(scene(seed=3))
    assert (native.labels != labels).mean() > 0.01 and np.abs(native.depth - depth).max() > 0.1


def test_depth_range_sets_the_ends_of_the_colour_map(tmp_path, small_weights):
    from hydranet.inference.render import colormap_lut

    Image.fromarray(scene(seed=4)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert predict(tmp_path / "a.png", "--weights", small_weights, "--out", out, "--save", "depth,raw",
                   "--depth-range", "16,23", "--depth-scale", "linear", "--image-format", "png") == 0
    depth = np.load(out / "a_raw_depth.npy")
    colours = decode(out / "a_depth.png")[:, :, ::-1]
    lut = colormap_lut("plasma").reshape(256, 3)
    near, far = depth <= 16, depth >= 23
    assert near.mean() > 0.02 and far.mean() > 0.02 and (~near & ~far).mean() > 0.2  # all three cases occur
    # 16 m and nearer: the dark end; 23 m and farther: the bright end; linear in between.
    assert np.all(colours[near] == lut[0]) and np.all(colours[far] == lut[255])
    index = np.clip(np.rint((np.maximum(depth, 16) - 16) * 255 / 7), 0, 255).astype(int)
    assert (colours == lut[index]).all(axis=2).mean() > 0.999  # rounding ties aside
    # The defaults, the model's range (0-80 m) on a log scale (from 1 m), colour them otherwise.
    assert predict(tmp_path / "a.png", "--weights", small_weights, "--out", tmp_path / "default",
                   "--save", "depth", "--image-format", "png") == 0
    default = decode(tmp_path / "default" / "a_depth.png")[:, :, ::-1]
    index = np.clip(np.rint(np.log(np.maximum(depth, 1.0)) * 255 / np.log(80.0)), 0, 255).astype(int)
    assert (default == lut[index]).all(axis=2).mean() > 0.999
    assert (default != colours).any(axis=2).mean() > 0.9


def test_recursive_mirrors_the_folder_tree(tmp_path, small_weights, capsys):
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    pictures = {"a": scene(seed=1), "sub/a": scene(seed=2), "sub/deeper/c": scene(40, 56, seed=3)}
    for rel, image in pictures.items():
        Image.fromarray(image).save(src / f"{rel}.png")
    out = tmp_path / "out"
    assert predict(src, "--recursive", "--weights", small_weights, "--out", out, "--save", "overlay,raw") == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*_overlay.jpg"))
    assert written == ["a_overlay.jpg", "sub/a_overlay.jpg", "sub/deeper/c_overlay.jpg"]
    predictor = Predictor(small_weights, backend="torch")
    for rel, image in pictures.items():  # each output is its own picture's, at its size
        np.testing.assert_array_equal(read_labels_png(out / f"{rel}_raw_labels.png"), predictor.predict(image).labels)
    # Without --recursive only the folder's own pictures are taken, and nothing is mirrored.
    flat = tmp_path / "flat"
    assert predict(src, "--weights", small_weights, "--out", flat, "--save", "overlay") == 0
    assert sorted(str(p.relative_to(flat)) for p in flat.rglob("*")) == ["a_overlay.jpg"]
    assert "done: 1 image(s)" in capsys.readouterr().out
