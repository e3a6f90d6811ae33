"""Rendering: palettes, overlays, depth colour maps, legends and panels, against hand-computed values."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hydranet.inference.render import (BACKGROUND, _log_ticks, panel_grid, colorize_depth, colorize_labels, colormap_lut,
                                       colour_range, depth_colorbar, legend_strip, make_panel, overlay)
from hydranet.labels import KITTI6, NYUD40

PALETTE = KITTI6.palette_array()


def test_colorize_labels_uses_the_palette_and_blacks_out_unknown_classes():
    labels = np.array([[0, 1, 2], [5, 6, 255]], np.uint8)
    out = colorize_labels(labels, PALETTE)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[0], PALETTE[[0, 1, 2]])
    np.testing.assert_array_equal(out[1, 0], (64, 0, 128))
    np.testing.assert_array_equal(out[1, 1:], 0)
    # int32 maps (and negative indices) give the same colours
    wide = colorize_labels(np.array([[0, 1, 2], [5, -1, 300]], np.int32), PALETTE)
    np.testing.assert_array_equal(wide[0], out[0])
    np.testing.assert_array_equal(wide[1, 1:], 0)


def test_overlay_blends_by_alpha():
    image = np.full((2, 2, 3), 200, np.uint8)
    labels = np.zeros((2, 2), np.uint8)  # sky = (128, 128, 128)
    np.testing.assert_array_equal(overlay(image, labels, PALETTE, 0.0), image)
    np.testing.assert_array_equal(overlay(image, labels, PALETTE, 1.0), 128)
    np.testing.assert_array_equal(overlay(image, labels, PALETTE, 0.25), 182)  # 0.75*200 + 0.25*128
    with pytest.raises(ValueError):
        overlay(image, np.zeros((3, 2), np.uint8), PALETTE)


def test_colorize_depth_is_linear_over_the_range_with_invalid_pixels_black():
    lut = colormap_lut("plasma")
    ref = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_PLASMA)[:, 0, ::-1]
    np.testing.assert_array_equal(lut, ref)
    depth = np.array([[0.5, 10.0, 40.0, 80.0, 200.0, np.nan, 0.0, np.inf]], np.float32)
    out = colorize_depth(depth, (0.0, 80.0), "plasma", scale="linear")
    np.testing.assert_array_equal(out[0, 0], lut[2])      # 0.5 m -> round(1.59) = 2
    np.testing.assert_array_equal(out[0, 1], lut[32])     # 10 m -> 31.875 -> 32
    np.testing.assert_array_equal(out[0, 2], lut[128])    # 40 m -> 127.5 -> 128
    np.testing.assert_array_equal(out[0, 3], lut[255])
    np.testing.assert_array_equal(out[0, 4], lut[255])    # clipped
    np.testing.assert_array_equal(out[0, 5:], 0)          # NaN, 0 (no depth), inf
    auto = colorize_depth(np.linspace(1, 2, 100, dtype=np.float32).reshape(10, 10), scale="linear")
    assert auto[0, 0].tolist() == lut[0].tolist() and auto[-1, -1].tolist() == lut[255].tolist()
    with pytest.raises(ValueError, match="unknown colour map"):
        colorize_depth(depth, (0, 80), "rainbowz")


def test_colorize_depth_log_scale_by_hand_values():
    # The default: equal ratios of distance get equal steps of colour; a range from 0 starts
    # at 1/80 of its far end (1 m for 0-80 m).
    lut = colormap_lut("plasma")
    depth = np.array([[0.5, 1.0, 2.0, 10.0, 80.0, 200.0, 0.0, np.nan]], np.float32)
    out = colorize_depth(depth, (0.0, 80.0))
    for i, index in enumerate([0, 0, 40, 134, 255, 255]):  # 255 ln(d) / ln(80): 2 m 40.3, 10 m 134.0
        np.testing.assert_array_equal(out[0, i], lut[index])
    np.testing.assert_array_equal(out[0, 6:], 0)
    assert colour_range((0.0, 80.0)) == (1.0, 80.0) and colour_range((0.0, 80.0), "linear") == (0.0, 80.0)
    assert colour_range((5.0, 50.0)) == (5.0, 50.0)
    # Its colour bar: 1-2-5 steps and the far end.
    assert _log_ticks(1.0, 80.0) == [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 80.0]
    with pytest.raises(ValueError, match="unknown depth scale"):
        colorize_depth(depth, (0, 80), scale="sqrt")


def test_legend_strip_shows_every_class_colour_and_wraps():
    strip = legend_strip(KITTI6.class_names, PALETTE, 600)
    assert strip.shape[1] == 600 and strip.dtype == np.uint8
    colours = {tuple(c) for c in strip.reshape(-1, 3)}
    assert all(tuple(int(v) for v in c) in colours for c in PALETTE)
    many = legend_strip(NYUD40.class_names, NYUD40.palette_array(), 600)
    assert many.shape[0] > 3 * strip.shape[0]  # 40 names need several rows
    with pytest.raises(ValueError):
        legend_strip(["a", "b"], PALETTE[:1], 100)


def test_depth_colorbar_contains_the_colour_ramp():
    bar = depth_colorbar((0, 80), 500)
    assert bar.shape[1] == 500
    colours = {tuple(c) for c in bar.reshape(-1, 3)}
    lut = colormap_lut("plasma")
    assert tuple(lut[0]) in colours and tuple(lut[255]) in colours


def test_make_panel_grid_places_tiles_exactly():
    a = np.full((20, 30, 3), 10, np.uint8)
    b = np.full((20, 30, 3), 20, np.uint8)
    c = np.full((10, 15, 3), 30, np.uint8)  # half height: scaled up to 20x30
    panel = make_panel([a, b, c], columns=2, gap=4)
    assert panel.shape == (2 * 20 + 3 * 4, 2 * 30 + 3 * 4, 3)
    np.testing.assert_array_equal(panel[4:24, 4:34], 10)
    np.testing.assert_array_equal(panel[4:24, 38:68], 20)
    np.testing.assert_array_equal(panel[28:48, 4:34], 30)
    assert (panel[28:48, 38:68] == np.array(BACKGROUND, np.uint8)).all()  # empty cell


def test_make_panel_titles_and_legends():
    tiles = [np.full((40, 60, 3), v, np.uint8) for v in (50, 100)]
    plain = make_panel(tiles)
    titled = make_panel(tiles, ["image", "depth"])
    assert titled.shape[1] == plain.shape[1] and titled.shape[0] > plain.shape[0]
    widths = []
    strip = np.full((7, 10, 3), 200, np.uint8)
    with_legend = make_panel(tiles, legend=[lambda w: widths.append(w) or np.zeros((5, w, 3), np.uint8), strip])
    assert widths == [plain.shape[1]]
    assert with_legend.shape == (plain.shape[0] + 5 + 7, plain.shape[1], 3)
    np.testing.assert_array_equal(with_legend[-7:, :10], 200)  # narrower strip padded on the right
    with pytest.raises(ValueError):
        make_panel(tiles, ["only one title"])


def test_titles_of_narrow_tiles_stay_in_their_cells():
    # Portrait or tiny tiles: long titles are drawn smaller, all alike, and never over the next cell.
    tiles = [np.full((300, 40, 3), 0, np.uint8) for _ in range(4)]
    titles = ["image", "segmentation", "overlay", "depth 1-80 m, log scale"]
    panel = make_panel(tiles, titles, gap=4)
    layout = panel_grid([t.shape[:2] for t in tiles], gap=4)
    caption = panel[4: 4 + layout.caption_height]
    ink = (caption != np.array(BACKGROUND, np.uint8)).any(axis=2)
    for i in range(len(tiles)):
        left = 4 + i * (layout.cell_width + 4)
        assert ink[:, left: left + layout.cell_width].any()  # every title is drawn
        assert not ink[:, left - 4: left].any()  # the gaps between cells stay empty
    assert not ink[:, -4:].any()
    # Same text height for every title: "image" is as tall as the shrunk "segmentation".
    rows = [np.flatnonzero(ink[:, 4 + i * (layout.cell_width + 4):][:, :layout.cell_width].any(axis=1))
            for i in (0, 1)]
    assert abs((rows[0][-1] - rows[0][0]) - (rows[1][-1] - rows[1][0])) <= 2
