"""The field's corruptions (imagecorruptions, RoboDepth's extras), mCE / mRR, heat maps, augmentation.

Everything runs on tiny images (48x64 at most; glass_blur is a pure-Python pixel loop in the
package) and needs no data set.
"""

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from hydranet.data import corruptions as C
from hydranet.data.transforms import RandomCorruption, training_transform
from hydranet.errors import InputError
from hydranet.evaluation.corruption import (
    corruption_error, format_summary, mean_corruption_error, mean_relative_corruption_error,
    mean_resilience_rate, parse_kinds, relative_corruption_error, resilience_rate, summarize)
from hydranet.evaluation.heatmap import grid_matrix, heatmap_layout, write_heatmaps

# imagecorruptions is in the test extra: no skip. It is imported through C.library() only, the
# package alone no longer imports (pkg_resources; see hydranet.data.corruptions).


def _image(h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _library_directly(image, name, severity, seed, index, monkeypatch):
    """``imagecorruptions.corrupt`` called by the test itself, after ``np.random.seed`` of the
    same words, with the two run-time fixes spelt out here (not taken from hydranet): the
    ``np.float_`` alias for fog, and for impulse_noise scikit-image's ``random_noise`` given
    ``rng=`` the first number drawn from the seeded global state."""
    import skimage.util

    ic = C.library()  # the package as hydranet imports it (pkg_resources stand-in, gaussian keyword)
    np.random.seed(C.corruption_seed(seed, index, name, severity))
    with monkeypatch.context() as m:
        if name == "fog" and "float_" not in np.__dict__:
            m.setattr(np, "float_", np.float64, raising=False)
        if name == "impulse_noise":
            import functools

            m.setattr(skimage.util, "random_noise",
                      functools.partial(skimage.util.random_noise, rng=int(np.random.randint(0, 2**31 - 1))))
        return ic.corrupt(image, corruption_name=name, severity=severity)


@pytest.mark.parametrize("name", C.LIBRARY)
def test_each_corruption_equals_imagecorruptions_for_the_same_seed(name, monkeypatch):
    image = _image()
    severity = 1 if name == "glass_blur" else 3
    ours = C.corrupt(image, name, severity, seed=7, index=4)
    theirs = _library_directly(image, name, severity, 7, 4, monkeypatch)
    assert ours.dtype == np.uint8 and ours.shape == image.shape
    assert np.array_equal(ours, theirs)
    assert not np.array_equal(ours, image) or name in ("pixelate",)  # it did something
    assert "float_" not in np.__dict__  # the NumPy alias does not outlive the fog call


def test_the_gaussian_keyword_fix_is_the_same_filter():
    from skimage.filters import gaussian

    C.library()
    import sys

    impl = sys.modules["imagecorruptions.corruptions"]
    x = _image(40, 36) / 255.0
    assert np.array_equal(impl.gaussian(x, sigma=2, multichannel=True), gaussian(x, sigma=2, channel_axis=-1))
    # the pkg_resources stand-in was there for the import only
    stub = sys.modules.get("pkg_resources")
    assert stub is None or getattr(stub, "resource_filename", None) is not C._resource_filename
    assert impl.resource_filename("imagecorruptions.corruptions", "./frost/frost1.png").endswith("frost1.png")


def test_seeded_per_image_corruption_and_severity_and_the_global_state_restored():
    image = _image()
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    a = C.corrupt(image, "gaussian_noise", 2, seed=1, index=0)
    assert np.random.random() == expected_next  # the caller's global stream did not move
    assert np.array_equal(a, C.corrupt(image, "gaussian_noise", 2, seed=1, index=0))
    for other in (dict(seed=1, index=1), dict(seed=2, index=0)):
        assert not np.array_equal(a, C.corrupt(image, "gaussian_noise", 2, **other))
    assert not np.array_equal(C.corrupt(image, "shot_noise", 2), C.corrupt(image, "shot_noise", 3))
    # impulse noise is reproducible too (scikit-image's own generator is seeded from ours)
    assert np.array_equal(C.corrupt(image, "impulse_noise", 4, index=3), C.corrupt(image, "impulse_noise", 4, index=3))


@pytest.mark.parametrize("shape", [(5, 7), (31, 100), (33, 47), (1, 40)])
def test_any_size_keeps_its_size(shape):
    image = _image(*shape, seed=2)
    for name in ("frost", "zoom_blur", "snow", "fog", "pixelate", "spatter", "elastic_transform",
                 "motion_blur", "glass_blur", "jpeg_compression", "dark", "hydranet-fog"):
        out = C.corrupt(image, name, 5)
        assert out.shape == image.shape and out.dtype == np.uint8, name


def test_names_and_groups():
    assert len(C.GROUPS["standard"]) == 15 and len(C.GROUPS["extra"]) == 4 and len(C.GROUPS["robodepth"]) == 18
    assert sorted(C.GROUPS["noise"] + C.GROUPS["blur"] + C.GROUPS["weather"] + C.GROUPS["digital"]) == \
        sorted(C.STANDARD)
    assert C.GROUPS["weather"] == ("snow", "frost", "fog", "brightness")
    assert set(C.GROUPS["robodepth"]) == set(C.STANDARD) | {"dark", "color_quant", "iso_noise"}
    names = parse_kinds("standard,fog,hydranet-fog")
    assert names == list(C.STANDARD) + ["hydranet-fog"]  # fog once: it is ImageNet-C's
    imagecorruptions = C.library()
    assert list(C.LIBRARY) == imagecorruptions.get_corruption_names("all")
    assert list(C.STANDARD) == imagecorruptions.get_corruption_names("common")


def test_unknown_names_are_one_line_listing_the_valid_ones():
    with pytest.raises(InputError) as info:
        parse_kinds("standard,sleet")
    text = str(info.value)
    assert "\n" not in text and "sleet" in text and "standard" in text and "gaussian_noise" in text
    assert "hydranet-glare" in text
    with pytest.raises(InputError, match="hydranet-rain"):
        parse_kinds("rain")  # hydranet's own weather is named apart from ImageNet-C's


def test_eval_cli_unknown_corruption(tmp_path, capsys):
    from hydranet.cli.main import main

    assert main(["eval", "--dataset", "folder", "--root", str(tmp_path), "--corrupt", "snow,sleet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown corruption(s) sleet" in err and "motion_blur" in err


# --- RoboDepth's extras by hand ------------------------------------------------------------------

class _StubRng:
    """poisson = floor (checks the photon counts), normal = +sigma (checks the sigmas)."""

    def poisson(self, lam):
        return np.floor(lam)

    def normal(self, loc, scale, size):
        return np.full(size, loc + scale)


def test_color_quant_by_hand_and_equal_to_pil_posterize():
    x = np.array([[[0, 100, 255], [200, 7, 128]]], np.uint8)
    assert C.robodepth_color_quant(x, 1).tolist() == [[[0, 96, 248], [200, 0, 128]]]  # 5 bits
    assert C.robodepth_color_quant(x, 5).tolist() == [[[0, 0, 128], [128, 0, 128]]]  # 1 bit
    image = _image(8, 9)
    for s in range(1, 6):
        assert np.array_equal(C.robodepth_color_quant(image, s),
                              np.asarray(ImageOps.posterize(Image.fromarray(image), 6 - s)))


def test_dark_by_hand():
    x = np.array([[[0, 51, 255]]], np.uint8)  # 0, 0.2, 1 in [0, 1]
    assert np.allclose(C.robodepth_darken(x, 1), [[[0, 0.04 * 0.6, 0.6]]])
    assert np.allclose(C.robodepth_darken(x, 5), [[[0, 0.04 * 0.2, 0.2]]])
    # severity 1: 600 photons, sigma 0.008: 0 -> 0.008 -> 2; 0.024 -> floor(14.4)/600 + 0.008 -> 7;
    # 0.6 -> 360/600 + 0.008 = 0.608 -> 155
    assert C.robodepth_dark(x, 1, _StubRng()).tolist() == [[[2, 7, 155]]]
    assert C.robodepth_darken(np.full((2, 2, 3), 9, np.uint8), 3).max() == 0  # a flat image is black


def test_iso_noise_by_hand():
    x = np.array([[[0, 51, 255]]], np.uint8)
    # 25 photons, sigma 0.7 * 0.08 = 0.056: 0.056 -> 14; 0.2 + 0.056 -> 65; 1 + 0.056 clipped -> 255
    assert C.robodepth_iso_noise(x, 1, _StubRng()).tolist() == [[[14, 65, 255]]]
    real = C.corrupt(_image(), "iso_noise", 5, index=1)
    assert np.array_equal(real, C.corrupt(_image(), "iso_noise", 5, index=1))


# --- mCE / mRR by hand ----------------------------------------------------------------------------

MODEL = {"fog": {1: 0.6, 2: 0.4}, "snow": {1: 0.5, 2: 0.3}}   # mIoU
REF = {"fog": {1: 0.5, 2: 0.3}, "snow": {1: 0.6, 2: 0.4}}


def _errors(t):
    return {c: {s: 1 - v for s, v in by.items()} for c, by in t.items()}


def test_ce_and_rr_by_hand():
    assert corruption_error({1: 0.4, 2: 0.6}, {1: 0.5, 2: 0.7}) == pytest.approx(1.0 / 1.2)
    assert resilience_rate({1: 0.6, 2: 0.4}, 0.8) == pytest.approx(0.625)
    assert relative_corruption_error({1: 0.5, 2: 0.7}, 0.2, {1: 0.4, 2: 0.6}, 0.3) == pytest.approx(0.8 / 0.4)
    mce = mean_corruption_error(_errors(MODEL), _errors(REF))
    assert mce["ce"] == pytest.approx({"fog": 1.0 / 1.2, "snow": 1.2 / 1.0})
    assert mce["mce"] == pytest.approx((1.0 / 1.2 + 1.2) / 2)
    mrr = mean_resilience_rate(MODEL, 0.8)
    assert mrr["rr"] == pytest.approx({"fog": 0.625, "snow": 0.5}) and mrr["mrr"] == pytest.approx(0.5625)
    rel = mean_relative_corruption_error(_errors(MODEL), 0.2, _errors(REF), 0.3)
    assert rel["relative_ce"] == pytest.approx({"fog": 1.0, "snow": 2.0}) and rel["relative_mce"] == pytest.approx(1.5)
    assert corruption_error({1: 0.4}, {1: 0.0}) is None and resilience_rate({1: float("nan")}, 0.5) is None
    with pytest.raises(ValueError, match="different severities"):
        corruption_error({1: 0.4, 2: 0.5}, {1: 0.5})


def test_definitions_reproduce_robodepth_kitti_c_published_figures():
    # RoboDepth docs/RESULT.md, KITTI-C: per-corruption abs rel (mean over severities) of
    # MonoDepth2 R18 (the reference: mCE 100, mRR 84.46 %, clean 0.119) and MonoDepth2 R18+nopt
    # (mCE 119.75 %, mRR 82.50 %, clean 0.144), in RoboDepth's order of the 18.
    r18 = [0.130, 0.280, 0.155, 0.277, 0.511, 0.187, 0.244, 0.242, 0.216, 0.201, 0.129, 0.193, 0.384,
           0.389, 0.340, 0.388, 0.145, 0.196]
    nopt = [0.183, 0.343, 0.311, 0.312, 0.399, 0.416, 0.254, 0.232, 0.199, 0.207, 0.148, 0.212, 0.441,
            0.452, 0.402, 0.453, 0.153, 0.171]
    ref = {c: {1: v} for c, v in zip(C.ROBODEPTH, r18)}
    model = {c: {1: v} for c, v in zip(C.ROBODEPTH, nopt)}
    assert mean_corruption_error(model, ref)["mce"] == pytest.approx(1.1975, abs=5e-4)
    score = {c: {1: 1 - v} for c, v in zip(C.ROBODEPTH, nopt)}
    assert mean_resilience_rate(score, 1 - 0.144)["mrr"] == pytest.approx(0.8250, abs=5e-4)
    score = {c: {1: 1 - v} for c, v in zip(C.ROBODEPTH, r18)}
    assert mean_resilience_rate(score, 1 - 0.119)["mrr"] == pytest.approx(0.8446, abs=5e-4)


def _rows(seg, depth, clean_miou, clean_abs):
    rows = [{"condition": "clean", "severity": None, "miou": clean_miou, "abs_rel": clean_abs, "delta1": 0.9}]
    for c in seg:
        for s in seg[c]:
            rows.append({"condition": c, "severity": s, "miou": seg[c][s], "abs_rel": depth[c][s],
                         "delta1": 0.9 - 0.1 * s})
    return rows


def test_summarize_sets_apart_hydranet_weather():
    depth = {"fog": {1: 0.2, 2: 0.3}, "snow": {1: 0.2, 2: 0.2}, "hydranet-rain": {1: 0.15, 2: 0.15}}
    ref_depth = {"fog": {1: 0.4, 2: 0.5}, "snow": {1: 0.2, 2: 0.2}, "hydranet-rain": {1: 0.3, 2: 0.3}}
    seg = dict(MODEL, **{"hydranet-rain": {1: 0.7, 2: 0.7}})
    ref_seg = dict(REF, **{"hydranet-rain": {1: 0.7, 2: 0.7}})
    summary = summarize(_rows(seg, depth, 0.8, 0.1), _rows(ref_seg, ref_depth, 0.7, 0.2))
    s = summary["segmentation"]["sets"]
    assert s["requested"]["corruptions"] == ["fog", "snow"] and s["hydranet"]["corruptions"] == ["hydranet-rain"]
    assert s["requested"]["mce"] == pytest.approx((1.0 / 1.2 + 1.2) / 2)
    assert s["requested"]["mrr"] == pytest.approx(0.5625)
    assert s["requested"]["mean"] == pytest.approx(0.45)
    # the reference's own robustness: REF means 0.4 (fog) and 0.5 (snow) against its clean 0.7
    assert s["requested"]["reference_mean"] == pytest.approx(0.45)
    assert s["requested"]["reference_mrr"] == pytest.approx((0.4 / 0.7 + 0.5 / 0.7) / 2)
    d = summary["depth"]["sets"]["requested"]
    assert d["ce"]["fog"] == pytest.approx(0.5 / 0.9) and d["ce"]["snow"] == pytest.approx(1.0)
    assert d["rr"]["fog"] == pytest.approx((0.8 + 0.7) / 2 / 0.9)  # score 1 - abs rel
    assert d["rr_delta1"]["fog"] == pytest.approx((0.8 + 0.7) / 2 / 0.9)  # delta1 0.8, 0.7 vs 0.9
    assert d["reference_mrr"] == pytest.approx(((1 - 0.45) / 0.8 + 0.8 / 0.8) / 2)  # scores 1 - abs rel
    text = format_summary(summary)
    assert "mCE" in text and "mRR" in text and "hydranet depth-aware" in text and "reference: mean" in text
    assert "standard" not in summary["segmentation"]["sets"]  # only sets run in full


def test_heatmap_files_open_with_the_expected_size(tmp_path):
    depth = {"fog": {1: 0.2, 2: 0.3}, "snow": {1: 0.2, 2: 0.25}}
    summary = summarize(_rows(MODEL, depth, 0.8, 0.1))
    paths = write_heatmaps(summary, tmp_path / "r.json", title="tiny")
    assert [p.name for p in paths] == ["r_segmentation.png", "r_depth.png"]
    h, w = heatmap_layout(["fog", "snow"], 3)  # s1, s2, mean
    assert h == 2 * 10 + 44 + 24 + 2 * 26
    for p in paths:
        with Image.open(p) as im:
            assert im.size == (w, h) and im.mode == "RGB"
    rows, m = grid_matrix(summary["segmentation"]["values"], [1, 2])
    assert rows == ["fog", "snow"] and m[:, -1] == pytest.approx([0.5, 0.4])
    seg = np.asarray(Image.open(paths[0])).astype(int)
    # brighter is better: fog s1 (0.6) is brighter than snow s2 (0.3); cell centres
    x0 = w - 10 - 3 * 72
    y0 = 10 + 44 + 24
    bright = seg[y0 + 3, x0 + 4].sum()
    dark = seg[y0 + 26 + 3, x0 + 72 + 4].sum()
    assert bright > dark
    json.dumps(summary)  # serialisable


# --- augmentation -----------------------------------------------------------------------------------

def _sample():
    image = _image(40, 36, seed=5)
    return {"image": image, "segmentation": (image[..., 0] // 86).astype(np.uint8),
            "depth": image[..., 1].astype(np.float32) / 10.0}


def test_augmentation_corrupts_the_image_only_and_is_deterministic():
    t = RandomCorruption(1.0, C.expand("standard"), (1, 5))
    sample = _sample()
    a = t(sample, np.random.default_rng(3))
    b = t(sample, np.random.default_rng(3))
    assert np.array_equal(a["image"], b["image"]) and not np.array_equal(a["image"], sample["image"])
    assert a["segmentation"] is sample["segmentation"] and a["depth"] is sample["depth"]
    outs = {t(sample, np.random.default_rng(s))["image"].tobytes() for s in range(6)}
    assert len(outs) > 1
    assert RandomCorruption(0.0, ["fog"])(sample, np.random.default_rng(0)) is sample
    pipe = training_transform(crop_size=None, scale=None, flip=False, corruptions=["noise", "dark"],
                              corruption_p=1.0, corruption_severity=[2, 2])
    assert isinstance(pipe.transforms[-1], RandomCorruption)
    assert pipe.transforms[-1].names == ["gaussian_noise", "shot_noise", "impulse_noise", "dark"]
    out = pipe(sample, np.random.default_rng(1))
    assert np.array_equal(out["depth"], sample["depth"])


def test_training_config_keys():
    from hydranet.training.config import DEFAULTS, load_config

    assert DEFAULTS["augment"]["corruptions"] is None and DEFAULTS["augment"]["corruption_p"] == 0.0
    base = ["data.train=[{type: folder, root: x}]", "steps=1"]
    cfg = load_config(None, base + ["augment.corruptions=[noise, fog]", "augment.corruption_p=0.3"])
    assert cfg["augment"]["corruptions"] == ["noise", "fog"]
    load_config(None, base + ["augment.corruptions=standard"])
    with pytest.raises(InputError, match="augment.corruptions.*sleet"):
        load_config(None, base + ["augment.corruptions=[fog, sleet]"])
    with pytest.raises(InputError, match="augment.corruption_p"):
        load_config(None, base + ["augment.corruption_p=2"])
    with pytest.raises(InputError, match="augment.corruption_severity"):
        load_config(None, base + ["augment.corruption_severity=[0, 5]"])
