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


class _MidpointRng:
    """A generator whose draws are known: ``uniform`` gives the middle, noise is zero."""

    def uniform(self, low=0.0, high=1.0, size=None):
        return (low + high) / 2

    def standard_normal(self, size=None, dtype=np.float64):
        return np.zeros(size, dtype)


def test_fog_follows_koschmieder_with_depth():
    # I = J t + A (1 - t), t = exp(-beta d). Severity 3 with the middle draws: beta = 0.04 /m,
    # airlight A = 0.85 (216.75 of 255), no density noise. By hand:
    #   J = 50,  d = 5 m:   t = exp(-0.2) = 0.81873, I = 40.937 + 39.290 = 80.23  -> 80
    #   J = 50,  d = 80 m:  t = exp(-3.2) = 0.04076, I = 2.038 + 207.915 = 209.95 -> 210
    #   J = 50,  d = 0 (missing, taken as 120 m): t = exp(-4.8) = 0.00823, I = 215.38 -> 215
    #   J = 200, d = 20 m:  t = exp(-0.8) = 0.44933, I = 89.866 + 119.358 = 209.22 -> 209
    im = np.full((4, 8, 3), 50, np.uint8)
    im[3] = 200
    depth = np.full((4, 8), 5.0, np.float32)
    depth[1], depth[2], depth[3] = 80.0, 0.0, 20.0
    out = apply_weather(im, "fog", 3, depth=depth, rng=_MidpointRng())
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 0], np.repeat([[80], [210], [215], [209]], 8, axis=1))
    assert np.all(out == out[:, :, :1])  # grey fog on a grey image stays grey

    # With real draws the law still holds pixel by pixel: from a black and a white image under
    # the same draws, t = (I_white - I_black) / 255 and A = I_black / (255 (1 - t)).
    depth = np.full((32, 48), 30.0, np.float32)
    depth[:, 24:] = 60.0
    black = apply_weather(np.zeros((32, 48, 3), np.uint8), "fog", 3, depth=depth,
                          rng=np.random.default_rng(4)).astype(float)[:, :, 0]
    white = apply_weather(np.full((32, 48, 3), 255, np.uint8), "fog", 3, depth=depth,
                          rng=np.random.default_rng(4)).astype(float)[:, :, 0]
    t = (white - black) / 255
    airlight = black / (255 * (1 - t))
    assert 0.82 - 0.01 < airlight.min() and airlight.max() < 0.88 + 0.01  # 0.85 +- 0.03, +- rounding
    assert airlight.max() - airlight.min() < 0.02  # one airlight for the whole image
    # beta = 0.04 x [0.85, 1.15], density noise within a few tenths: -ln(t) / d stays near it,
    # and twice the distance is on average twice the optical depth.
    beta = -np.log(t) / depth
    assert 0.02 < np.median(beta) < 0.06
    ratio = np.log(t[:, 24:]).mean() / np.log(t[:, :24]).mean()
    assert 1.6 < ratio < 2.4
    # Stronger fog at the same depth is brighter (more airlight).
    mild = apply_weather(np.zeros((32, 48, 3), np.uint8), "fog", 1, depth=depth,
                         rng=np.random.default_rng(4)).astype(float)[:, :, 0]
    assert mild.mean() < black.mean()


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
