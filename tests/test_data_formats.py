"""Each dataset reader on a tiny fixture written in its real on-disk format."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hydranet.data.datasets import (CamVid, Cityscapes, FolderDataset, Kitti6Segmentation, KittiDepth,
                                    MixedDataset, NYUDv2, NYUDv2Mat, build_dataset, remap_by_name)
from hydranet.data.datasets.cityscapes import disparity_to_depth
from hydranet.errors import InputError
from hydranet.labels import KITTI6

H, W = 6, 8


def _rgb(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _save(path: Path, arr) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def test_camvid_segnet_layout_maps_void_to_255(tmp_path):
    lab = np.full((H, W), 3, np.uint8)
    lab[0, 0] = 11
    for split in ("train", "val"):
        _save(tmp_path / split / "a.png", _rgb())
        _save(tmp_path / f"{split}annot" / "a.png", lab)
    # SegNet's own list uses absolute paths of the authors' machine
    (tmp_path / "train.txt").write_text("/SegNet/CamVid/train/a.png /SegNet/CamVid/trainannot/a.png\n")
    for split in ("train", "val"):  # val has no list: the folders are scanned
        s = CamVid(tmp_path, split)[0]
        assert s["segmentation"][0, 0] == 255 and s["segmentation"][1, 1] == 3
        assert s["image"].shape == (H, W, 3) and "depth" not in s and s["name"] == "a"


def test_kitti_depth_completion_layout_and_eigen_lists(tmp_path):
    raw = tmp_path / "raw" / "2011_09_26" / "2011_09_26_drive_0002_sync"
    for cam in ("image_02", "image_03"):
        for f in (5, 6):
            _save(raw / cam / "data" / f"{f:010d}.png", _rgb(f))
    depth = np.zeros((H, W), np.uint16)
    depth[2, 3] = 256 * 12 + 128  # 12.5 m
    gt = tmp_path / "data_depth_annotated" / "train" / "2011_09_26_drive_0002_sync" / "proj_depth" / "groundtruth"
    _save(gt / "image_02" / "0000000005.png", depth)
    _save(gt / "image_03" / "0000000005.png", depth)
    ds = KittiDepth(tmp_path, "train")
    assert len(ds) == 1
    s = ds[0]
    assert s["depth"].dtype == np.float32 and s["depth"][2, 3] == 12.5 and s["depth"][0, 0] == 0
    assert np.array_equal(s["image"], _rgb(5)) and "segmentation" not in s
    # monodepth2 list (frame 6 has no ground truth: no depth target, not an error) and Eigen's list
    (tmp_path / "md2.txt").write_text("2011_09_26/2011_09_26_drive_0002_sync 5 r\n"
                                      "2011_09_26/2011_09_26_drive_0002_sync 6 l\n")
    (tmp_path / "eigen.txt").write_text("2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000005.png "
                                        "2011_09_26/2011_09_26_drive_0002_sync/image_03/data/0000000005.png\n")
    md2 = KittiDepth(tmp_path, split_file="md2.txt")
    assert md2[0]["depth"][2, 3] == 12.5 and np.array_equal(md2[0]["image"], _rgb(5))
    assert "depth" not in md2[1]
    assert KittiDepth(tmp_path, split_file=tmp_path / "eigen.txt")[0]["depth"][2, 3] == 12.5
    assert "intrinsics" not in s  # no calibration file in the raw data: no camera
    # The date's calib_cam_to_cam.txt gives each camera's rectified K (P_rect_02, P_rect_03).
    (tmp_path / "raw" / "2011_09_26" / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\n"
        "P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 "
        "1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03\n"
        "P_rect_03: 7.215377e+02 0.000000e+00 6.095593e+02 -3.395242e+02 0.000000e+00 7.215377e+02 "
        "1.728540e+02 2.199936e+00 0.000000e+00 0.000000e+00 1.000000e+00 2.729905e-03\n")
    np.testing.assert_allclose(KittiDepth(tmp_path, "train")[0]["intrinsics"],
                               [[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]])
    both = KittiDepth(tmp_path, split_file="md2.txt")
    assert both[0]["intrinsics"][0, 0] == 721.5377 and both[1]["intrinsics"][1, 2] == 172.854
    # Training for a canonical camera converts KITTI's depth with KITTI's focal length, not an
    # assumed one: a 12.5 m point seen at fx 721.5 is 12.5 * 415.69 / 721.5 m for the canonical lens.
    from hydranet.data.transforms import AssumeFocal, CanonicalDepth

    rng = np.random.default_rng(0)
    sample = AssumeFocal(415.69)(KittiDepth(tmp_path, "train")[0], rng)
    assert sample["focal"] == 721.5377
    assert CanonicalDepth(415.69)(sample, rng)["depth"][2, 3] == pytest.approx(12.5 * 415.69 / 721.5377)
    # an 8-bit PNG is not a depth map: clear error before training
    _save(gt / "image_02" / "0000000005.png", np.zeros((H, W), np.uint8))
    with pytest.raises(InputError, match="16-bit"):
        KittiDepth(tmp_path, "train").verify()


def test_kitti6_colour_coded_segmentation(tmp_path):
    colours = np.array(KITTI6.palette + ((0, 0, 0),), np.uint8)
    ids = np.arange(H * W).reshape(H, W) % 7  # 6 = black = void
    _save(tmp_path / "000001.png", _rgb())
    _save(tmp_path / "segm_gt_000001.png", colours[ids])
    s = Kitti6Segmentation(tmp_path)[0]
    assert np.array_equal(s["segmentation"], np.where(ids == 6, 255, ids))
    # images/ + labels/ layout with the same file names
    _save(tmp_path / "l" / "images" / "x.png", _rgb())
    _save(tmp_path / "l" / "labels" / "x.png", colours[ids])
    assert np.array_equal(Kitti6Segmentation(tmp_path / "l")[0]["segmentation"], np.where(ids == 6, 255, ids))


def test_kitti6_reference_example(examples_dir):
    s = Kitti6Segmentation(examples_dir / "ExpKITTI_joint")[0]
    counts = np.bincount(s["segmentation"].ravel(), minlength=256)
    # pixel counts of each colour in segm_gt_000099.png (black = void)
    assert counts[[0, 1, 2, 3, 4, 5, 255]].tolist() == [19966, 209246, 51540, 22523, 31651, 86348, 32346]


def test_cityscapes_label_ids_and_disparity_to_depth(tmp_path):
    stem = "aachen_000000_000019"
    _save(tmp_path / "leftImg8bit" / "train" / "aachen" / f"{stem}_leftImg8bit.png", _rgb())
    lab = np.full((H, W), 7, np.uint8)  # road
    lab[0, :3] = [26, 4, 33]  # car, void (static), bicycle
    _save(tmp_path / "gtFine" / "train" / "aachen" / f"{stem}_gtFine_labelIds.png", lab)
    disp = np.zeros((H, W), np.uint16)
    disp[1, 1] = 256 * 20 + 1  # d = 20 px
    _save(tmp_path / "disparity" / "train" / "aachen" / f"{stem}_disparity.png", disp)
    cam = tmp_path / "camera" / "train" / "aachen" / f"{stem}_camera.json"
    cam.parent.mkdir(parents=True)
    cam.write_text(json.dumps({"extrinsic": {"baseline": 0.2}, "intrinsic": {"fx": 2000.0}}))
    s = Cityscapes(tmp_path, "train")[0]
    assert s["segmentation"][0, :4].tolist() == [13, 255, 18, 0]
    assert s["depth"][1, 1] == pytest.approx(0.2 * 2000 / 20) and s["depth"][0, 0] == 0
    assert disparity_to_depth(np.array([[1]], np.uint16), 0.2, 2000.0)[0, 0] == 0


def test_nyud_png_layouts(tmp_path, examples_dir):
    seg = (np.arange(H * W).reshape(H, W) % 40).astype(np.uint8)
    seg[0, 0] = 255
    depth = np.full((H, W), 5000 * 2, np.uint16)
    _save(tmp_path / "train" / "rgb" / "0001.png", _rgb())
    _save(tmp_path / "train" / "masks" / "0001.png", seg)
    _save(tmp_path / "train" / "depth" / "0001.png", depth)
    s = NYUDv2(tmp_path, "train")[0]
    assert np.array_equal(s["segmentation"], seg) and np.all(s["depth"] == 2.0)
    (tmp_path / "list.txt").write_text("train/rgb/0001.png train/masks/0001.png train/depth/0001.png\n")
    assert NYUDv2(tmp_path, "list")[0]["depth"][3, 3] == 2.0
    ex = NYUDv2(examples_dir / "ExpNYUD_joint")[0]
    assert ex["segmentation"].shape == (480, 640) and ex["depth"].max() == pytest.approx(26142 / 5000)


def _nyud_arrays(n=3):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (H, W, 3, n), dtype=np.uint8)
    depths = rng.uniform(0.5, 9.0, (H, W, n)).astype(np.float32)
    labels = rng.integers(0, 5, (H, W, n)).astype(np.uint16)
    return images, depths, labels


def test_nyud_official_mat_v5_and_v73(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    images, depths, labels = _nyud_arrays()
    class_map = tmp_path / "map.txt"
    class_map.write_text("3 1 40 2")  # raw classes 1..4 -> 40-class ids 3, 1, 40, 2 (1-based)
    expected_seg = np.array([255, 2, 0, 39, 1])[labels[..., 1]]
    scipy_io.savemat(tmp_path / "splits.mat", {"trainNdxs": np.array([[1], [2]]), "testNdxs": np.array([[3]])})
    v5 = tmp_path / "v5.mat"
    scipy_io.savemat(v5, {"images": images, "depths": depths, "labels": labels})
    h5py = pytest.importorskip("h5py")
    v73 = tmp_path / "v73.mat"
    # MATLAB v7.3: HDF5 behind a 512-byte user block holding MATLAB's header; axes reversed
    with h5py.File(v73, "w", userblock_size=512) as f:
        f["images"] = images.transpose(3, 2, 1, 0)
        f["depths"] = depths.transpose(2, 1, 0)
        f["labels"] = labels.transpose(2, 1, 0)
    with open(v73, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, created by a test".ljust(128, b" "))
    for path in (v5, v73):
        ds = NYUDv2Mat(path, split="train", split_file=tmp_path / "splits.mat", class_map=class_map)
        assert len(ds) == 2
        s = ds[1]
        assert s["name"] == "nyud_0002"
        assert np.array_equal(s["image"], images[..., 1])
        assert np.allclose(s["depth"], depths[..., 1])
        assert np.array_equal(s["segmentation"], expected_seg)
    assert len(NYUDv2Mat(v73, split="test", split_file=tmp_path / "splits.mat", targets=["depth"])) == 1
    with pytest.raises(InputError, match="class_map"):
        NYUDv2Mat(v5)


def test_folder_layout_and_missing_targets(tmp_path):
    _save(tmp_path / "images" / "a.png", _rgb())
    _save(tmp_path / "images" / "b.jpg", _rgb())
    _save(tmp_path / "labels" / "a.png", np.full((H, W), 2, np.uint8))
    _save(tmp_path / "depth" / "b.png", np.full((H, W), 256 * 3, np.uint16))
    np.save(tmp_path / "depth" / "a.npy", np.full((H, W), 1.5, np.float32))
    ds = FolderDataset(tmp_path)
    a, b = ds[0], ds[1]
    assert a["segmentation"][0, 0] == 2 and a["depth"][0, 0] == 1.5
    assert "segmentation" not in b and b["depth"][0, 0] == 3.0


def test_bad_label_policy_error_before_training_or_missing(tmp_path):
    _save(tmp_path / "images" / "a.png", _rgb())
    _save(tmp_path / "images" / "b.png", _rgb())
    _save(tmp_path / "labels" / "a.png", np.ones((H, W), np.uint8))
    (tmp_path / "labels" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    ds = FolderDataset(tmp_path)
    with pytest.raises(InputError, match=r"b\.png.*on_bad_label: missing"):
        ds.verify()
    lenient = FolderDataset(tmp_path, on_bad_label="missing")
    with pytest.warns(UserWarning, match="without segmentation"):
        assert lenient.verify() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "segmentation" not in lenient[1] and lenient[0]["segmentation"][0, 0] == 1
    # a label file that goes bad during training is a missing target, never a crash
    strict = FolderDataset(tmp_path)
    with pytest.warns(UserWarning):
        assert "segmentation" not in strict[1]
    # a label file deleted after listing is caught when the dataset is built
    _save(tmp_path / "m" / "images" / "a.png", _rgb())
    _save(tmp_path / "m" / "labels" / "a.png", np.ones((H, W), np.uint8))
    ds = FolderDataset(tmp_path / "m")
    (tmp_path / "m" / "labels" / "a.png").unlink()
    with pytest.raises(InputError, match="segmentation file not found"):
        ds._check_files_exist()
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(InputError, match="no samples"):
        FolderDataset(tmp_path / "empty")


def test_mixing_with_label_remap(tmp_path):
    _save(tmp_path / "cv" / "train" / "a.png", _rgb())
    lab = np.array([[0, 1, 2, 3, 4, 5, 8, 11]] * H, np.uint8)
    _save(tmp_path / "cv" / "trainannot" / "a.png", lab)
    _save(tmp_path / "f" / "images" / "b.png", _rgb(1))
    _save(tmp_path / "f" / "depth" / "b.png", np.full((H, W), 512, np.uint16))
    cv = build_dataset({"type": "camvid", "root": str(tmp_path / "cv"), "split": "train", "remap": "by_name"},
                       target_label_set="kitti6")
    f = build_dataset({"type": "folder", "root": str(tmp_path / "f")})
    mix = MixedDataset([cv, f], repeats=[2, 1])
    assert len(mix) == 3 and mix.locate(1) == (0, 0) and mix.locate(2) == (1, 0)
    # camvid sky, building, pole, road, pavement, tree, car, void -> kitti6 0, 1, -, 2, 3, 4, 5, -
    assert mix[0]["segmentation"][0].tolist() == [0, 1, 255, 2, 3, 4, 5, 255]
    assert mix[2]["depth"][0, 0] == 2.0 and "segmentation" not in mix[2]
    assert remap_by_name("cityscapes19", "kitti6")[10] == 0  # sky
    assert remap_by_name("cityscapes19", "camvid11")[1] == 4  # sidewalk -> pavement (synonym, reversed)
    explicit = build_dataset({"type": "camvid", "root": str(tmp_path / "cv"), "split": "train",
                              "remap": {3: 0}})
    assert explicit[0]["segmentation"][0].tolist() == [255, 255, 255, 0, 255, 255, 255, 255]
    with pytest.raises(InputError, match="unknown dataset type"):
        build_dataset({"type": "nope", "root": "x"})
    with pytest.raises(InputError, match="not found"):
        build_dataset({"type": "camvid", "root": str(tmp_path / "absent")})


def test_synthetic_scenes_mix_with_remap_and_target_choice():
    pytest.importorskip("hydranet.data.synthetic")
    spec = {"type": "synthetic", "num_scenes": 1, "seed": 0, "size": [48, 64], "remap": "by_name",
            "targets": ["segmentation"]}
    s = build_dataset(spec, target_label_set="kitti6")[0]
    assert "depth" not in s and s["segmentation"].shape == (48, 64)
    assert set(np.unique(s["segmentation"]).tolist()) <= {0, 1, 2, 3, 4, 5, 255}
    full = build_dataset({"type": "synthetic", "num_scenes": 1, "seed": 0, "size": [48, 64]})[0]
    assert full["depth"].dtype == np.float32 and full["depth"].max() > 0


def test_void_label_becomes_ignore_in_folder_and_depth_folder(tmp_path):
    from hydranet.data.datasets import DepthFolder, FolderDataset

    for sub in ("images", "labels", "depth"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    labels = np.array([[0, 1, 7, 7, 2, 3]] * 4, np.uint8)
    Image.fromarray(labels).save(tmp_path / "labels" / "a.png")
    Image.fromarray(np.full((4, 6), 2560, np.uint16)).save(tmp_path / "depth" / "a.png")
    for cls in (FolderDataset, DepthFolder):
        seg = cls(tmp_path, void_label=7)[0]["segmentation"]
        assert seg[0].tolist() == [0, 1, 255, 255, 2, 3], cls
