"""Weather corruptions: deterministic, right shape/dtype, and physically plausible."""

import numpy as np
import pytest

from hydranet.data.weather import WEATHER_KINDS, apply_weather, proxy_depth
from hydranet.errors import InputError


def _scene(h=48, w=64):
    rng = np.random.default_rng(3)
    return rng.integers(40, 200, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", WEATHER_KINDS)
def test_deterministic_given_rng(kind):
    im = _scene()
    a = apply_weather(im, kind, 3, rng=np.random.default_rng(7))
    b = apply_weather(im, kind, 3, rng=np.random.default_rng(7))
    assert a.dtype == np.uint8 and a.shape == im.shape
    assert np.array_equal(a, b)
    assert not np.array_equal(a, im)


@pytest.mark.parametrize("kind", ["night", "lowlight"])
def test_dark_conditions_darken_more_with_severity(kind):
    im = _scene()
    means = [apply_weather(im, kind, s, rng=np.random.default_rng(0)).mean() for s in (1, 3, 5)]
    assert means[0] < im.mean() and means[0] > means[1] > means[2]


def test_fog_follows_koschmieder_with_depth():
    im = np.full((20, 20, 3), 50, np.uint8)
    depth = np.full((20, 20), 5.0, np.float32)
    depth[:, 10:] = 80.0
    out = apply_weather(im, "fog", 3, depth=depth, rng=np.random.default_rng(0)).astype(float)
    near, far = out[:, :10].mean(), out[:, 10:].mean()
    # Far pixels approach the airlight (~0.85 * 255), near ones stay close to the scene.
    assert near < 90 and far > 180
    # Stronger fog at the same depth is brighter (more airlight).
    mild = apply_weather(im, "fog", 1, depth=depth, rng=np.random.default_rng(0)).astype(float)
    assert mild[:, 10:].mean() < far


def test_fog_without_depth_uses_row_proxy():
    d = proxy_depth(100, 4)
    assert d[0, 0] > d[50, 0] > d[99, 0] and np.all(np.diff(d[:, 0]) <= 1e-4)
    im = np.full((100, 30, 3), 30, np.uint8)
    out = apply_weather(im, "fog", 4, rng=np.random.default_rng(0))
    assert out[:10].mean() > out[-10:].mean()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(InputError, match="unknown weather"):
        apply_weather(_scene(), "snow")
    with pytest.raises(InputError, match="severity"):
        apply_weather(_scene(), "rain", 6)
    with pytest.raises(InputError, match="uint8"):
        apply_weather(_scene().astype(np.float32), "rain")
