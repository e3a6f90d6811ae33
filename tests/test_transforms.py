"""Joint training transforms: what happens to depth when an image is rescaled."""

import numpy as np
import pytest

from hydranet.data.transforms import RandomScale, training_transform


def _sample(h: int = 90, w: int = 120, depth: float = 10.0) -> dict:
    d = np.full((h, w), depth, np.float32)
    d[:10] = 0.0  # sky: missing
    return {"image": np.zeros((h, w, 3), np.uint8), "segmentation": np.zeros((h, w), np.uint8), "depth": d}


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_scale_depth_divides_depth_by_the_applied_factor(factor):
    out = RandomScale(factor, factor, scale_depth=True)(_sample(), np.random.default_rng(0))
    assert out["image"].shape[:2] == (round(90 * factor), round(120 * factor))
    valid = out["depth"] > 0
    # Enlarged twice, the street looks as if it were half as far away (and the other way round).
    np.testing.assert_allclose(out["depth"][valid], 10.0 / factor, rtol=1e-6)
    assert (~valid).sum() == round(10 * factor) * round(120 * factor)  # missing stays missing


def test_scale_depth_uses_the_rounded_size_and_drops_depth_beyond_the_range():
    out = RandomScale(0.5, 0.5, scale_depth=True, max_depth=80.0)(_sample(h=101, w=120, depth=30.0),
                                                                    np.random.default_rng(0))
    applied = out["image"].shape[0] / 101
    np.testing.assert_allclose(out["depth"][out["depth"] > 0], 30.0 / applied, rtol=1e-6)
    far = RandomScale(0.5, 0.5, scale_depth=True, max_depth=50.0)(_sample(depth=30.0), np.random.default_rng(0))
    assert not far["depth"].any()  # 60 m is beyond a 50 m range: missing, not clipped


def test_depth_is_kept_by_default_and_samples_without_depth_pass():
    out = RandomScale(2.0, 2.0)(_sample(), np.random.default_rng(0))
    assert set(np.unique(out["depth"])) == {0.0, 10.0}
    no_depth = {"image": np.zeros((40, 60, 3), np.uint8), "segmentation": np.zeros((40, 60), np.uint8)}
    t = training_transform(crop_size=(32, 32), scale=(0.5, 1.0), scale_depth=True, max_depth=80.0)
    assert t(no_depth, np.random.default_rng(1))["image"].shape == (32, 32, 3)


def test_canonical_depth_follows_the_focal_length_through_rescaling():
    # A camera of focal 800 px: for a canonical focal of 400 px the scene must look twice as near.
    sample = {**_sample(depth=20.0), "focal": 800.0}
    t = training_transform(crop_size=None, scale=(0.5, 0.5), flip=False, canonical_focal=400.0, max_depth=80.0)
    out = t(sample, np.random.default_rng(0))
    assert out["focal"] == pytest.approx(400.0)  # resized by 0.5: the focal length halves
    # After the resize the camera's focal is 400 px, the canonical one: depth unchanged.
    np.testing.assert_allclose(out["depth"][out["depth"] > 0], 20.0, rtol=1e-6)
    native = training_transform(crop_size=None, scale=None, flip=False, canonical_focal=400.0)(
        sample, np.random.default_rng(0))
    np.testing.assert_allclose(native["depth"][native["depth"] > 0], 10.0, rtol=1e-6)


def test_canonical_depth_without_a_stated_focal_is_scale_depth():
    t_old = training_transform(crop_size=None, scale=(0.6, 1.4), flip=False, scale_depth=True, max_depth=80.0)
    t_new = training_transform(crop_size=None, scale=(0.6, 1.4), flip=False, canonical_focal=415.0,
                               max_depth=80.0)
    for seed in range(3):
        a = t_old(_sample(depth=30.0), np.random.default_rng(seed))
        b = t_new(_sample(depth=30.0), np.random.default_rng(seed))
        # fx follows the width's rounding, scale_depth the height's: equal to within a pixel's worth.
        assert np.array_equal(a["depth"] > 0, b["depth"] > 0)
        np.testing.assert_allclose(a["depth"], b["depth"], rtol=1.5 / 90)


def test_image_labels_and_depth_stay_aligned_through_scale_crop_and_flip():
    # A pattern of 16-pixel blocks encoded three ways: image red = 20 v, label = v, depth = v + 1.
    h, w = 128, 192
    y, x = np.mgrid[0:h, 0:w]
    v = ((x // 16) + 3 * (y // 16)) % 11
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = 20 * v
    sample = {"image": image, "segmentation": v.astype(np.uint8), "depth": (v + 1).astype(np.float32)}
    t = training_transform(crop_size=(96, 160), scale=(0.7, 1.3), flip=True)
    flipped = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        out = t(sample, rng)
        labels, depth, red = out["segmentation"].astype(int), out["depth"], out["image"][..., 0].astype(int)
        valid = labels != 255
        # Bilinear resizing blurs the image only at block edges; labels and depth are nearest.
        assert (np.abs(red[valid] - 20 * labels[valid]) <= 2).mean() > 0.85
        assert np.array_equal(depth[valid], labels[valid] + 1.0)
        assert np.all(depth[~valid] == 0) and np.all(red[~valid] == 0)  # padding: 255 / 0 / black
        flipped += int(out["image"][0, 0, 0] != image[0, 0, 0])
    assert 0 < flipped  # the flips and crops really moved things
