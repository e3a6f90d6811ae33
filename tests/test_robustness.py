"""Issue 20: bounded, atomic and clear. Large images, typed configs and weights metadata, --debug,
bad images before training, checkpoint temporaries and CRCs, SIGTERM during a folder of images."""

from __future__ import annotations

import copy
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from predict_helpers import scene

import hydranet
from hydranet.cli.main import main
from hydranet.errors import CheckpointError, InputError
from hydranet.inference import media
from hydranet.inference.media import decode_image, read_image
from hydranet.model.config import ModelConfig
from hydranet.training.config import DEFAULTS, RULES, check_rules, leaf_keys, load_config

BASE = ["data.train=[{type: folder, root: x}]", "steps=1"]


def one_line(text: str) -> str:
    assert "\n" not in text.strip(), text
    return text.strip()


# -- 1. large images: refused in one line, or read reduced with --downscale-large ---------------


def _photo(tmp_path: Path, name: str, h: int = 300, w: int = 400, **save) -> Path:
    path = tmp_path / name
    Image.fromarray(scene(h, w)).save(path, **save)
    return path


def test_a_large_jpeg_is_decoded_reduced_by_libjpeg_not_decoded_whole(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    path = _photo(tmp_path, "big.jpg", quality=95)
    drafts = []
    real = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft",
                        lambda self, mode, size: drafts.append(size) or real(self, mode, size))
    with pytest.raises(InputError, match=r"big.jpg: 400x300 is 0 Mpx, more than the 0 Mpx limit"):
        read_image(path, max_pixels=10_000)
    assert not drafts
    decoded = decode_image(path, max_pixels=10_000, downscale=True)
    # 1/4 is the largest DCT scaling under 10,000 pixels: 100x75, decoded at that size directly.
    assert drafts == [(100, 75)] and decoded.image.shape == (75, 100, 3)
    assert decoded.original_size == (300, 400) and decoded.reduced
    full = read_image(path)
    small = np.asarray(Image.fromarray(full).reduce(4), np.int16)
    assert np.abs(decoded.image.astype(np.int16) - small).mean() < 6
    # Under the limit nothing changes, with or without the option.
    same = decode_image(path, downscale=True)
    assert not same.reduced and np.array_equal(same.image, full)


def test_other_formats_are_reduced_after_a_whole_decode_up_to_a_ceiling(tmp_path, monkeypatch):
    png = _photo(tmp_path, "big.png")
    decoded = decode_image(png, max_pixels=10_000, downscale=True)
    assert decoded.image.shape == (75, 100, 3)  # reduce(4): a box average of 4x4 pixels
    np.testing.assert_array_equal(decoded.image, np.asarray(Image.fromarray(scene(300, 400)).reduce(4)))
    # A palette and a 16-bit PNG are averaged as colours and as 16-bit values.
    Image.fromarray(scene(300, 400)).quantize(16).save(tmp_path / "p.png")
    assert decode_image(tmp_path / "p.png", 10_000, True).image.shape == (75, 100, 3)
    grey16 = np.full((300, 400), 40000, np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    assert (decode_image(tmp_path / "g16.png", 10_000, True).image == 40000 >> 8).all()
    # EXIF orientation: the reduced image is upright, as is the size it came from.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = _photo(tmp_path, "r.jpg", exif=exif)
    out = decode_image(rotated, 10_000, True)
    assert out.image.shape == (100, 75, 3) and out.original_size == (400, 300)
    # Above the ceiling of a whole decode, a PNG or a progressive JPEG is refused even so.
    monkeypatch.setattr(media, "FULL_DECODE_PIXELS", 100_000)
    with pytest.raises(InputError) as info:
        decode_image(png, 10_000, True)
    assert one_line(str(info.value)) == (
        f"{png}: 400x300 PNG is 0 Mpx; only a baseline JPEG is read reduced straight from the file, "
        "a PNG over 0 Mpx would be decoded whole first: downscale the file first")
    progressive = _photo(tmp_path, "p.jpg", progressive=True)
    with pytest.raises(InputError, match="400x300 progressive JPEG is 0 Mpx"):
        decode_image(progressive, 10_000, True)
    assert decode_image(_photo(tmp_path, "b.jpg"), 10_000, True).reduced  # a baseline JPEG: no ceiling


@pytest.mark.usefixtures("one_thread")  # other jobs share the 2 cores
def test_predict_max_pixels_and_downscale_large(tmp_path, small_weights, capsys):
    path = _photo(tmp_path, "big.jpg", quality=95)
    args = ["predict", str(path), "--weights", str(small_weights), "--backend", "torch", "--size", "64x96",
            "--save", "overlay,raw"]
    assert main([*args, "--out", str(tmp_path / "o1"), "--max-pixels", "10000"]) == 1
    err = capsys.readouterr().err
    assert f"hydranet: error: {path}: 400x300 is 0 Mpx, more than the 0 Mpx limit; downscale the image " \
           "first, or pass --downscale-large to read it reduced" in err
    assert main([*args, "--out", str(tmp_path / "o2"), "--max-pixels", "10000", "--downscale-large",
                 "--intrinsics", "400,400,200,150"]) == 0
    out = capsys.readouterr().out
    assert f"note: {path}: 400x300 is over the 0.01 Mpx limit; read reduced to 100x75 (--downscale-large), " \
           "and so are its outputs" in out
    assert Image.open(tmp_path / "o2" / "big_overlay.jpg").size == (100, 75)
    assert np.load(tmp_path / "o2" / "big_raw_depth.npy").shape == (75, 100)
    for bad in ("100", "500000000"):
        assert main([*args, "--out", str(tmp_path / "o3"), "--max-pixels", bad]) == 2
        assert one_line(capsys.readouterr().err) == \
            f"hydranet: error: --max-pixels {bad}: must be 4096 to 400000000 pixels"


def test_huge_jpeg_is_predicted_reduced_under_a_memory_limit_that_a_full_decode_exceeds(tmp_path):
    # 20000x20000 pixels: 1.2 GB as RGB (more in Pillow, which keeps 4 bytes a pixel) beside the
    # 1.1 GB of address space torch takes, so a whole decode fails under 2 GB; libjpeg's 1/8
    # decode needs 2500x2500. The PNG cannot be decoded reduced by Pillow: one line, even so.
    jpg, png = tmp_path / "huge.jpg", tmp_path / "huge.png"
    Image.new("L", (20000, 20000), 90).save(jpg, quality=50)
    Image.new("L", (20000, 20000)).save(png, optimize=False, compress_level=1)
    out = tmp_path / "out"
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2_000_000_000, 2_000_000_000))\n"
        "from hydranet.errors import InputError\n"
        "from hydranet.inference.media import read_image\n"
        "try:\n"
        f"    read_image({str(jpg)!r}, max_pixels=None)\n"
        "    print('full decode: fits')\n"
        "except InputError as e:\n"
        "    print('full decode:', e)\n"
        "from hydranet.cli.main import main\n"
        f"sys.exit(main(['predict', {str(jpg)!r}, {str(png)!r}, '--out', {str(out)!r}, '--backend', 'torch',\n"
        "                '--size', '64x96', '--save', 'overlay', '--downscale-large', '--max-pixels', '1000000']))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 1, r.stderr  # the PNG failed, the JPEG did not
    assert f"full decode: {jpg}: cannot read image (out of memory while decoding it)" in r.stdout
    assert f"note: {jpg}: 20000x20000 is over the 1 Mpx limit; read reduced to 834x834" in r.stdout
    assert Image.open(out / "huge_jpg_overlay.jpg").size == (834, 834)  # two inputs named huge
    errors = [line for line in r.stderr.splitlines() if line.startswith("hydranet: error:")]
    assert errors[0] == (f"hydranet: error: {png}: 20000x20000 PNG is 400 Mpx; only a baseline JPEG is read "
                         "reduced straight from the file, a PNG over 100 Mpx would be decoded whole first: "
                         "downscale the file first")
    assert "Traceback" not in r.stderr and "DecompressionBomb" not in r.stderr


# -- 2. typed configs and weights metadata ---------------------------------------------------------


def test_every_config_leaf_has_a_rule_and_the_defaults_follow_them():
    leaves = dict(leaf_keys())
    untyped = [k for k, v in leaves.items() if (v is None or isinstance(v, (list, dict))) and k not in RULES]
    assert not untyped, f"add a Rule for {untyped} in training/config.py RULES"
    assert not set(RULES) - set(leaves), "RULES names keys that DEFAULTS does not have"
    cfg = copy.deepcopy(DEFAULTS)
    cfg["data"]["train"] = [{"type": "folder", "root": "x"}]
    check_rules(cfg)
    for path in sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml")):
        load_config(path)  # every shipped config and recipe follows the rules


@pytest.mark.parametrize("override, message", [
    ("augment.scale=[1.4, 0.6]", "config augment.scale: [1.4, 0.6] is not allowed; expected [low, high]: two "
                                 "numbers > 0, the first at most the second, or null"),
    ("augment.scale=[0.5]", "config augment.scale: [0.5] is not allowed"),
    ("augment.scale=[0, 2]", "config augment.scale: [0, 2] is not allowed"),
    ("bf16='yes'", "config bf16: 'yes' is not allowed; expected true or false"),
    ("tensorboard=1", "config tensorboard: 1 is not allowed; expected true or false"),
    ("optim.name=adamx", "config optim.name: 'adamx' is not allowed; expected one of sgd, adam, adamw"),
    ("optim.schedule=3", "config optim.schedule: 3 is not allowed; expected one of poly, step, constant"),
    ("loss.weighting=best", "config loss.weighting: 'best' is not allowed; expected one of fixed, uncertainty, dwa"),
    ("augment.crop_size=[0, 10]", "config augment.crop_size: [0, 10] is not allowed; expected [H, W]: two whole "
                                  "numbers >= 1, or null"),
    ("augment.crop_size=[16.5, 16]", "config augment.crop_size: [16.5, 16] is not allowed"),
    ("augment.resize=256", "config augment.resize: 256 is not allowed; expected [H, W]"),
    ("augment.weather_severity=[2, 9]", "config augment.weather_severity: [2, 9] is not allowed; expected "
                                        "[low, high]: two whole numbers from 1 to 5"),
    ("augment.weather_kinds=[snow]", "config augment.weather_kinds: ['snow'] is not allowed; expected a "
                                     "non-empty list of names from rain, fog, night, lowlight, glare"),
    ("augment.weather_p=1.5", "config augment.weather_p: 1.5 is not allowed; expected a number from 0 to 1"),
    ("augment.color_jitter=.nan", "config augment.color_jitter: nan is not allowed"),
    ("augment.flip=maybe", "config augment.flip: 'maybe' is not allowed; expected true or false"),
    ("data.on_bad_label=skip", "config data.on_bad_label: 'skip' is not allowed; expected one of error, missing"),
    ("data.num_workers=-1", "config data.num_workers: -1 is not allowed; expected a whole number >= 0"),
    ("data.verify=no way", "config data.verify: 'no way' is not allowed; expected true or false"),
    ("data.val={type: folder}", "config data.val: {'type': 'folder'} is not allowed; expected a list of mappings"),
    ("val.depth_protocol=kitti", "config val.depth_protocol: 'kitti' is not allowed; expected one of none, "
                                 "kitti_eigen"),
    ("val.every=0", "config val.every: 0 is not allowed; expected a whole number >= 1"),
    ("optim.gamma=0", "config optim.gamma: 0 is not allowed; expected a number > 0"),
    ("optim.momentum=1.5", "config optim.momentum: 1.5 is not allowed; expected a number from 0 to 1"),
    ("optim.grad_clip=-1", "config optim.grad_clip: -1 is not allowed; expected a number > 0, or null"),
    ("optim.warmup_steps=1.5", "config optim.warmup_steps: 1.5 is not allowed; expected a whole number >= 0"),
    ("loss.class_weights=[1, x]", "config loss.class_weights: [1, 'x'] is not allowed; expected a non-empty "
                                  "list of numbers >= 0, or null"),
    ("loss.weights={segmentation: 1, dpeth: 1}", "config loss.weights: {'segmentation': 1, 'dpeth': 1} is not "
                                                 "allowed; expected a mapping of segmentation, depth to numbers >= 0"),
    ("loss.dwa_temperature=0", "config loss.dwa_temperature: 0 is not allowed; expected a number > 0"),
    ("model.encoder=resnet", "config model.encoder: 'resnet' is not allowed; expected one of mobilenetv2, "
                             "efficientnet_lite0, or null"),
    ("model.tasks=[segmentation, height]", "config model.tasks: ['segmentation', 'height'] is not allowed"),
    ("model.depth_range=[80, 0]", "config model.depth_range: [80, 0] is not allowed; expected [near, far] metres"),
    ("model.decoder_channels=100000", "config model.decoder_channels: 100000 is not allowed; expected a whole "
                                      "number from 1 to 1024, or null"),
    ("model.init=[a.ckpt]", "config model.init: ['a.ckpt'] is not allowed; expected text, or null"),
    ("seed=-1", "config seed: -1 is not allowed; expected a whole number >= 0"),
    ("output=3", "config output: 3 is not allowed; expected text"),
    ("threads=0", "config threads: 0 is not allowed; expected a whole number >= 1, or null"),
    ("log_every=0", "config log_every: 0 is not allowed; expected a whole number >= 1"),
    ("loss.ordinal.margin=-1", "config loss.ordinal.margin: -1 is not allowed"),
])
def test_every_wrong_config_value_is_one_line_naming_key_value_and_expectation(override, message):
    with pytest.raises(InputError) as info:
        load_config(None, [*BASE, override])
    assert message in one_line(str(info.value))


def test_a_long_wrong_value_is_shortened_and_a_yaml_file_is_checked_the_same(tmp_path):
    with pytest.raises(InputError) as info:
        load_config(None, [*BASE, f"loss.class_weights=[{', '.join(['w'] * 100)}]"])
    assert len(one_line(str(info.value))) < 200 and "..." in str(info.value)
    config = tmp_path / "c.yaml"
    config.write_text("data: {train: [{type: folder, root: x}]}\nsteps: 1\nbf16: \"yes\"\n")
    with pytest.raises(InputError, match="config bf16: 'yes' is not allowed; expected true or false"):
        load_config(config)


@pytest.mark.parametrize("field, value, message", [
    ("decoder_channels", "wide", "decoder_channels must be a whole number from 1 to 1024, got 'wide'"),
    ("decoder_channels", 100_000, "decoder_channels must be a whole number from 1 to 1024, got 100000"),
    ("encoder", 3, "encoder must be one of mobilenetv2, efficientnet_lite0, got 3"),
    ("label_set", ["kitti6"], "label_set must be a label-set name or null, got ['kitti6']"),
    ("class_names", [1, 2, 3, 4, 5, 6], "class_names must be a list of class names or null, got [1, 2, 3"),
    ("palette", "red", "palette must be a list of [r, g, b] colours of 0-255 or null, got 'red'"),
    ("name", None, "name must be text, got None"),
    ("extra", [], "extra must be a JSON object, got []"),
    ("tasks", 5, "tasks must be a list of task names, got 5"),
    ("depth_range", "far", "depth_range must be [low, high] metres with 0 <= low < high, got 'far'"),
    ("depth_range", 80, "depth_range must be [low, high] metres with 0 <= low < high, got 80"),
    ("canonical_focal", "wide", "canonical_focal must be a focal length in pixels (1 to 100000) or null, "
                                "got 'wide'"),
    ("num_classes", 5000, "num_classes must be at most 1024, got 5000"),
])
def test_weights_metadata_is_typed_one_line_per_wrong_field(tmp_path, field, value, message):
    good = hydranet.create_model("kitti6").config
    data = json.loads(good.to_json())
    data[field] = value
    with pytest.raises(ValueError) as info:
        ModelConfig.from_json(json.dumps(data))
    assert message in one_line(str(info.value))


def test_a_weights_file_asking_for_a_giant_decoder_is_refused_before_building_it(tmp_path, capsys):
    from safetensors.torch import save_file

    good = hydranet.save_weights(hydranet.create_model("kitti6"), tmp_path / "good.safetensors")
    meta = dict(hydranet.checkpoints.read_metadata(good))
    config = json.loads(meta["config"])
    config["decoder_channels"] = 1_000_000  # a 10^12-weight decoder if it were built
    meta["config"] = json.dumps(config)
    save_file({"x": torch.zeros(1)}, str(tmp_path / "bad.safetensors"), metadata=meta)
    Image.fromarray(scene()).save(tmp_path / "a.png")
    start = time.perf_counter()
    assert main(["predict", str(tmp_path / "a.png"), "--weights", str(tmp_path / "bad.safetensors"),
                 "--out", str(tmp_path / "o")]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"hydranet: error: {tmp_path / 'bad.safetensors'}: invalid model configuration in "
                          "metadata (decoder_channels must be a whole number from 1 to 1024, got 1000000)")
    assert time.perf_counter() - start < 10


# -- 3. --debug --------------------------------------------------------------------------------------


def test_errors_are_one_line_and_debug_adds_the_traceback(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nowhere.yaml"
    expected = f"hydranet: error: {missing}: config file not found"
    monkeypatch.delenv("HYDRANET_DEBUG", raising=False)
    assert main(["train", "--config", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == expected
    assert main(["--debug", "train", "--config", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "Traceback (most recent call last):" and "InputError" in err[-2]
    assert err[-1] == expected  # the one line stays the last, after the traceback
    assert "HYDRANET_DEBUG" not in os.environ  # --debug lasts for its own run only
    monkeypatch.setenv("HYDRANET_DEBUG", "1")
    assert main(["train", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err and err.strip().endswith(expected)
    monkeypatch.setenv("HYDRANET_DEBUG", "0")
    assert main(["train", "--config", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == expected


@pytest.mark.usefixtures("one_thread")  # other jobs share the 2 cores
def test_debug_also_shows_why_one_input_of_many_failed(tmp_path, small_weights, capsys, monkeypatch):
    monkeypatch.delenv("HYDRANET_DEBUG", raising=False)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    args = ["predict", str(tmp_path / "bad.png"), "--weights", str(small_weights), "--backend", "torch",
            "--size", "64x96"]
    assert main([*args, "--out", str(tmp_path / "o1")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"hydranet: error: {tmp_path / 'bad.png'}: not an image" in err
    assert main(["--debug", *args, "--out", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err and "InputError" in err
    assert f"hydranet: error: {tmp_path / 'bad.png'}: not an image" in err


# -- 4. images, sizes and ids checked before training --------------------------------------------


def _folder(root: Path, n: int = 4, size=(20, 24)) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("images", "labels", "depth"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = rng.integers(0, 256, size + (3,), dtype=np.uint8)
        Image.fromarray(im).save(root / "images" / f"{i}.png")
        Image.fromarray((im[..., 0] // 86).astype(np.uint8)).save(root / "labels" / f"{i}.png")
        Image.fromarray(im[..., 1].astype(np.uint16) * 20 + 256).save(root / "depth" / f"{i}.png")
    return root


def _dataset(root: Path, policy: str):
    from hydranet.data.datasets import FolderDataset

    return FolderDataset(root, on_bad_label=policy)


def test_an_unreadable_image_stops_before_training_or_is_left_out_with_a_count(tmp_path):
    root = _folder(tmp_path / "d")
    bad = root / "images" / "2.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG header and nothing decodable
    with pytest.raises(InputError) as info:
        _dataset(root, "error").verify(images=True)
    assert one_line(str(info.value)).startswith(f"{bad}: cannot read image (")
    assert str(info.value).endswith("; fix or remove the file, or set on_bad_label: missing to train without it")
    lenient = _dataset(root, "missing")
    with pytest.warns(UserWarning) as caught:
        assert lenient.verify(images=True) == 1
    messages = [str(w.message) for w in caught]
    assert any(m.startswith(f"{bad}: cannot read image") and m.endswith("2 is left out") for m in messages)
    assert any("1 unreadable image(s) left out; 3 samples remain" in m for m in messages)
    assert len(lenient) == 3 and [lenient[i]["name"] for i in range(3)] == ["0", "1", "3"]
    # Evaluation's verify() leaves images to the evaluation, which skips a bad one itself.
    assert _dataset(root, "error").verify() == 0


def test_a_label_or_depth_of_another_size_is_reported_like_a_bad_label(tmp_path):
    root = _folder(tmp_path / "d")
    label = root / "labels" / "1.png"
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(label)
    depth = root / "depth" / "3.png"
    Image.fromarray(np.full((21, 24), 512, np.uint16)).save(depth)
    with pytest.raises(InputError) as info:
        _dataset(root, "error").verify(images=True)
    assert one_line(str(info.value)) == (f"{label}: segmentation is 12x10 but the image 1.png is 24x20; fix the "
                                         "file or set on_bad_label: missing to train without it")
    lenient = _dataset(root, "missing")
    with pytest.warns(UserWarning) as caught:
        assert lenient.verify(images=True) == 2
    assert [str(w.message) for w in caught] == [
        f"{label}: segmentation is 12x10 but the image 1.png is 24x20; 1 is used without segmentation",
        f"{depth}: depth is 24x21 but the image 3.png is 24x20; 3 is used without depth"]
    assert "segmentation" not in lenient[1] and "depth" not in lenient[3] and "depth" in lenient[1]


def test_label_ids_beyond_the_class_count_are_counted_in_one_warning(tmp_path):
    root = _folder(tmp_path / "d")
    for i in (0, 2):
        labels = np.zeros((20, 24), np.uint8)
        labels[0, :3] = (7, 9, 255)  # 255 is the ignore value, not an unknown class
        Image.fromarray(labels).save(root / "labels" / f"{i}.png")
    with pytest.warns(UserWarning) as caught:
        assert _dataset(root, "error").verify(num_classes=3, images=True) == 0
    (message,) = [str(w.message) for w in caught]
    assert one_line(message) == (f"folder dataset {root}: 2 label file(s) hold class ids >= 3 (first "
                                 f"{root / 'labels' / '0.png'}: 7, 9); training ignores them like 255 (set "
                                 "remap: in the dataset entry if they are classes)")


def _tiny_cfg(tmp_path: Path, data: Path, **over) -> dict:
    cfg = load_config(None, [f"data.train=[{{type: folder, root: {data}}}]", "steps=1"])
    cfg.update(output=str(tmp_path / "run"), seed=0, batch_size=2, steps=1, tensorboard=False, threads=1)
    cfg["model"].update({"factory": "hydranet", "num_classes": 3, "decoder_channels": 16})
    cfg["augment"].update(crop_size=[16, 16])
    cfg.update(over)
    return cfg


def test_the_trainer_checks_images_before_the_first_step(tmp_path):
    from hydranet.training.trainer import Trainer

    data = _folder(tmp_path / "d")
    (data / "images" / "1.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"1\.png: cannot read image .*set on_bad_label: missing"):
        Trainer(_tiny_cfg(tmp_path, data), log=lambda m: None)
    cfg = _tiny_cfg(tmp_path, data)
    cfg["data"]["on_bad_label"] = "missing"
    with pytest.warns(UserWarning) as caught:
        trainer = Trainer(cfg, log=lambda m: None)
    assert any("1 unreadable image(s) left out; 3 samples remain" in str(w.message) for w in caught)
    assert len(trainer.train_set) == 3


# -- 5. training checkpoints: fsync, rename, no temporaries left ---------------------------------


def test_a_stale_checkpoint_temporary_is_removed_and_the_checkpoint_is_complete(tmp_path, monkeypatch):
    from hydranet.training.checkpoint import load_state
    from hydranet.training.trainer import Trainer

    run = tmp_path / "run"
    run.mkdir()
    stale = [run / ".last.pt.k1ll3d.tmp", run / ".last.safetensors.x9.tmp"]
    for p in stale:
        p.write_bytes(b"half a checkpoint of a SIGKILLed run")
    keep = run / "notes.tmp"
    keep.write_text("not ours")
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    trainer = Trainer(_tiny_cfg(tmp_path, _folder(tmp_path / "d")), log=lambda m: None)
    trainer.fit()
    assert not any(p.exists() for p in stale) and keep.exists()
    assert not [p for p in run.iterdir() if p.name.startswith(".")]
    state = load_state(run / "last.pt")  # its zip CRCs are checked too
    assert state["step"] == 1
    # last.pt went to disk before its rename, and the folder after it.
    assert any(Path(s).name.startswith(".last.pt.") for s in synced) and str(run) in synced


def test_save_state_clears_temporaries_of_killed_saves_itself(tmp_path):
    from hydranet.training.checkpoint import load_state, save_state

    for i in range(3):
        (tmp_path / f".last.pt.{i}abc.tmp").write_bytes(b"x" * 100)
    save_state(tmp_path / "last.pt", {"model": {"w": torch.ones(3)}, "step": 7})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_state(tmp_path / "last.pt")["step"] == 7


# -- 6. a flipped byte inside a checkpoint's zip ---------------------------------------------------


def _flip_data_byte(path: Path, member_suffix: str = "data/0") -> None:
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(member_suffix))
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    data[info.header_offset + 30 + name_len + extra_len + 5] ^= 0x01  # one bit of one stored weight
    path.write_bytes(bytes(data))


@pytest.mark.usefixtures("one_thread")  # other jobs share the 2 cores
def test_a_checkpoint_with_a_bad_crc_is_refused_naming_the_file(tmp_path, capsys):
    from hydranet.checkpoints.official import read_state_dict
    from hydranet.training.checkpoint import load_state, save_state

    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": hydranet.create_model("kitti6").state_dict()}, path)
    assert read_state_dict(path)  # intact: loads
    _flip_data_byte(path)
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    assert one_line(str(info.value)) == (
        f"{path}: truncated or corrupt checkpoint (member model/data/0 fails its CRC check); "
        "download it again (`hydranet weights download NAME`)")
    Image.fromarray(scene()).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--weights", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "fails its CRC check" in one_line(capsys.readouterr().err)
    state = tmp_path / "last.pt"
    save_state(state, {"model": {"w": torch.arange(100.0)}, "step": 3})
    _flip_data_byte(state)
    # (torch names the archive's folder after the temporary file it was saved to)
    with pytest.raises(CheckpointError, match=r"last.pt: unreadable training checkpoint \(member "
                                              r"\S+/data/0 fails its CRC check\); resume from another one"):
        load_state(state)


# -- 7. SIGTERM during a folder of images ------------------------------------------------------------


@pytest.mark.usefixtures("one_thread")  # other jobs share the 2 cores
def test_sigterm_during_a_folder_leaves_only_complete_outputs_and_a_rerun_completes(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(20):
        Image.fromarray(scene(120, 160, seed=i)).save(src / f"{i:02d}.png")
    command = ["predict", str(src), "--out", str(out), "--backend", "torch", "--size", "32x64",
               "--save", "panel,raw"]
    proc = subprocess.Popen([sys.executable, "-m", "hydranet", *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not (
            out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir())):
        time.sleep(0.005)  # until a finished output (not a temporary file) is there
    proc.send_signal(signal.SIGTERM)  # the first output exists: the run is a few images in
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "hydranet: interrupted" and "Traceback" not in err
    files = sorted(out.iterdir())
    assert not [p for p in files if p.name.startswith(".")], "temporary files left behind"
    assert 0 < len([p for p in files if p.name.endswith("_panel.jpg")]) < 20, "not interrupted mid-folder"
    for p in files:  # whatever is there is whole
        assert p.stat().st_size > 0, p
        if p.suffix in (".png", ".jpg"):
            with Image.open(p) as im:
                im.load()
        elif p.suffix == ".npy":
            assert np.load(p).shape == (120, 160)
        elif p.suffix == ".json":
            json.loads(p.read_text())
    # The same command again names a finished output (not a partial one) and asks for --overwrite;
    # with it the run completes.
    assert main(command) == 2
    assert "already exists" in one_line(capsys.readouterr().err)
    assert main([*command, "--overwrite"]) == 0
    assert len(list(out.glob("*_panel.jpg"))) == 20 and not [p for p in out.iterdir() if p.name.startswith(".")]
