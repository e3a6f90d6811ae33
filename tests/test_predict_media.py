"""Reading images of every common kind and reading/writing video with PyAV."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest
from PIL import Image
from predict_helpers import H, W, make_video, scene, video_info

from hydranet.errors import InputError
from hydranet.inference.camera import from_focal_35mm
from hydranet.inference.media import (VideoReader, VideoWriter, decode_image, exif_camera, is_video, iter_video,
                                      read_image)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_formats_round_trip(tmp_path, suffix):
    img = scene()
    path = tmp_path / f"a{suffix}"
    Image.fromarray(img).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    np.testing.assert_array_equal(read_image(path), img)


def test_jpeg_reads_close_to_the_original(tmp_path):
    img = scene()
    Image.fromarray(img).save(tmp_path / "a.jpg", quality=95)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() < 4


def test_greyscale_rgba_and_palette_become_rgb(tmp_path):
    img = scene()
    grey = img[:, :, 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (H, W, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)
    rgba = np.dstack([img, np.full((H, W), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), img)  # alpha dropped
    Image.fromarray(img).quantize(16).save(tmp_path / "p.png")
    pal = read_image(tmp_path / "p.png")
    assert pal.shape == (H, W, 3) and len(np.unique(pal.reshape(-1, 3), axis=0)) <= 16


def test_16_bit_images_are_scaled_to_8_bit(tmp_path):
    rng = np.random.default_rng(3)
    grey16 = rng.integers(0, 65536, (H, W), dtype=np.uint16)
    rgb16 = rng.integers(0, 65536, (H, W, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "c16.tif"), rgb16[:, :, ::-1])
    g = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(g[:, :, 1], (grey16 >> 8).astype(np.uint8))
    for name in ("c16.png", "c16.tif"):
        np.testing.assert_array_equal(read_image(tmp_path / name), (rgb16 >> 8).astype(np.uint8))


@pytest.mark.parametrize("orientation,rotate", [(3, Image.Transpose.ROTATE_180),
                                                (6, Image.Transpose.ROTATE_270),
                                                (8, Image.Transpose.ROTATE_90)])
def test_exif_orientation_is_applied(tmp_path, orientation, rotate):
    img = scene()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(img).save(tmp_path / "r.png", exif=exif)
    out = read_image(tmp_path / "r.png")
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(img).transpose(rotate)))
    if orientation in (6, 8):
        assert out.shape == (W, H, 3)


def test_a_35mm_focal_length_by_hand():
    # On a 36 x 24 px image the 35 mm frame is one pixel a millimetre: 50 mm is 50 px.
    cam = from_focal_35mm(50.0, 24, 36)
    assert (cam.fx, cam.fy, cam.cx, cam.cy, cam.size) == (50.0, 50.0, 17.5, 11.5, (24, 36))
    # 4000 x 3000 (5000 px diagonal) at 26 mm, a phone's main camera: 26 * 5000 / 43.267 px.
    assert from_focal_35mm(26.0, 3000, 4000).fx == pytest.approx(3004.6, abs=0.1)


def _with_focal(path, focal, orientation=None):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = focal  # FocalLengthIn35mmFilm, in the Exif sub-IFD
    if orientation:
        exif[0x0112] = orientation
    # As bytes: Pillow's PNG writer skips an Exif object whose only entries are in a sub-IFD.
    Image.fromarray(scene()).save(path, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_focal_length_gives_the_camera_of_the_upright_pixels(tmp_path, suffix):
    path = _with_focal(tmp_path / f"f{suffix}", 28)
    expected = 28 * np.hypot(W, H) / np.hypot(36, 24)
    cam = exif_camera(path)
    assert cam.fx == cam.fy == pytest.approx(expected)
    assert (cam.cx, cam.cy, cam.size) == ((W - 1) / 2, (H - 1) / 2, (H, W))
    assert decode_image(path).camera == cam
    # Turned by its orientation tag: the same focal length, the principal point of the upright image.
    turned = exif_camera(_with_focal(tmp_path / f"t{suffix}", 28, orientation=6))
    assert turned.fx == pytest.approx(expected) and turned.size == (W, H) and turned.cx == (H - 1) / 2
    # Read reduced, the camera is that of the pixels it returns.
    small = decode_image(path, max_pixels=H * W // 4, downscale=True)
    assert small.camera.fx == pytest.approx(expected / 2, rel=0.02)


def test_missing_or_implausible_exif_focal_lengths_give_no_camera(tmp_path):
    Image.fromarray(scene()).save(tmp_path / "plain.jpg")
    assert exif_camera(tmp_path / "plain.jpg") is None and decode_image(tmp_path / "plain.jpg").camera is None
    for focal in (0, 5000):  # 0: "unknown" in EXIF; 5000 mm: a broken writer
        assert exif_camera(_with_focal(tmp_path / f"{focal}.jpg", focal)) is None
    with pytest.raises(InputError, match="missing.jpg: no such file"):
        exif_camera(tmp_path / "missing.jpg")


def test_unreadable_images_raise_input_error_naming_the_file(tmp_path):
    garbage = tmp_path / "broken.png"
    garbage.write_bytes(b"this is not a png at all" * 10)
    with pytest.raises(InputError, match="broken.png: not an image"):
        read_image(garbage)
    with pytest.raises(InputError, match="missing.jpg: no such file"):
        read_image(tmp_path / "missing.jpg")
    Image.fromarray(scene()).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.png: cannot read image"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path)


def test_mp4_writer_keeps_frame_rate_count_and_content(tmp_path):
    frames = [np.roll(scene(), 3 * i, axis=1) for i in range(9)]
    fps = Fraction(30000, 1001)
    with VideoWriter(tmp_path / "v.mp4", fps) as writer:
        for f in frames:
            writer.write(f)
    assert writer.frames_written == 9
    count, rate, size = video_info(tmp_path / "v.mp4")
    assert (count, rate, size) == (9, fps, (H, W))
    with VideoReader(tmp_path / "v.mp4") as reader:
        decoded = list(reader)
    assert reader.error is None and reader.frame_count == 9
    assert np.abs(decoded[4].astype(int) - frames[4]).mean() < 6  # lossy H.264, 4:2:0 chroma


def test_mp4_keeps_colours(tmp_path):
    # Flat patches decode to their colour: a wrong YUV matrix or range (full vs 16-235) is off by 10+ levels.
    colours = [(230, 30, 30), (30, 200, 60), (40, 60, 220), (245, 245, 245), (128, 128, 128), (20, 20, 20)]
    frame = np.concatenate([np.full((64, 64, 3), c, np.uint8) for c in colours], axis=1)
    with VideoWriter(tmp_path / "c.mp4", 10) as writer:
        for _ in range(3):
            writer.write(frame)
    with VideoReader(tmp_path / "c.mp4") as reader:
        decoded = next(iter(reader)).astype(int)
    for i, c in enumerate(colours):
        patch = decoded[16:48, 64 * i + 16: 64 * i + 48].reshape(-1, 3).mean(0)
        assert np.abs(patch - np.array(c)).max() < 3, (c, patch)


def test_decoded_frames_are_exact_bt601_and_honour_colour_tags(tmp_path):
    import av

    from hydranet.inference.media import _frame_to_rgb

    make_video(tmp_path / "v.mp4", 3)
    with av.open(str(tmp_path / "v.mp4")) as container:
        frame = next(container.decode(video=0))
        assert (frame.format.name, frame.colorspace, frame.color_range) == ("yuv420p", 2, 0)
        # The BT.601 limited-range formula in float, chroma repeated over each 2x2 block.
        h, w = frame.height, frame.width
        yuv = frame.to_ndarray(format="yuv420p").astype(float)
        y = (yuv[:h] - 16) * 255 / 219
        u, v = (np.kron(p.reshape(h // 2, w // 2), np.ones((2, 2))) - 128 for p in
                (yuv[h: h + h // 4], yuv[h + h // 4:]))
        k = 255 / 224
        exact = np.stack([y + 1.402 * k * v, y - 0.344136 * k * u - 0.714136 * k * v, y + 1.772 * k * u], -1)
        exact = np.clip(np.rint(exact), 0, 255)
        ours = _frame_to_rgb(frame).astype(float)
        assert np.abs(ours - exact).max() <= 1 and np.abs(ours - exact).mean() < 0.1
        # swscale's own fast path is about a level darker; ours is not further from the formula.
        assert np.abs(ours - exact).mean() <= np.abs(frame.to_ndarray(format="rgb24") - exact).mean()
        # A BT.709 or full-range frame is converted by swscale with its own matrix and range.
        frame.colorspace = 1
        bt709 = frame.to_ndarray(format="rgb24")
        assert np.abs(bt709 - exact).max() > 5
        assert np.array_equal(_frame_to_rgb(frame), bt709)
        frame.colorspace, frame.color_range = 2, 2
        assert np.array_equal(_frame_to_rgb(frame), frame.to_ndarray(format="rgb24"))


def test_gif_writer_and_odd_sizes(tmp_path):
    frames = [np.roll(scene(33, 47), 2 * i, axis=1) for i in range(6)]
    with VideoWriter(tmp_path / "v.gif", 10) as gif, VideoWriter(tmp_path / "odd.mp4", 10) as mp4:
        for f in frames:
            gif.write(f)
            mp4.write(f)
    count, rate, size = video_info(tmp_path / "v.gif")
    assert (count, rate, size) == (6, 10, (33, 47))
    fps, decoded = iter_video(tmp_path / "v.gif")
    assert np.abs(next(decoded).astype(int) - frames[0]).mean() < 12  # 256-colour palette
    # H.264 4:2:0 needs even sizes: the odd frame is padded by one row and column
    assert video_info(tmp_path / "odd.mp4")[:3:2] == (6, (34, 48))
    with pytest.raises(InputError, match="cannot write video format"):
        VideoWriter(tmp_path / "v.avi", 10)


def test_writer_rejects_a_frame_of_another_size(tmp_path):
    with VideoWriter(tmp_path / "v.mp4", 25) as writer:
        writer.write(scene())
        with pytest.raises(ValueError, match="differs from the first frame"):
            writer.write(scene(32, 32))
    assert video_info(tmp_path / "v.mp4")[0] == 1


def test_reader_samples_every_nth_frame(tmp_path):
    make_video(tmp_path / "v.mp4", 10)
    with VideoReader(tmp_path / "v.mp4") as reader:
        indices = [i for i, _ in reader.frames(every=3)]
    assert indices == [0, 3, 6, 9] and reader.frames_decoded == 10 and reader.error is None
    assert is_video(tmp_path / "v.mp4") and not is_video(tmp_path / "v.png")


@pytest.mark.parametrize("suffix,options", [(".mkv", None), (".mp4", {"movflags": "+faststart"})])
def test_truncated_video_yields_the_frames_before_the_damage(tmp_path, suffix, options):
    full = tmp_path / f"full{suffix}"
    make_video(full, 30, options=options)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with VideoReader(cut) as reader:
        frames = list(reader)
    assert 0 < len(frames) < 30
    assert reader.error is not None and f"decoded {len(frames)} of 30" in reader.error


def test_unreadable_videos_raise_input_error(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match="clip.mp4: not a readable video"):
        VideoReader(bad)
    with pytest.raises(InputError, match="no such file"):
        VideoReader(tmp_path / "nothing.mp4")
    # A video track whose codec FFmpeg does not know (found by tools/fuzz.py): no decoder at all.
    make_video(tmp_path / "clip.mov", 3)
    unknown = tmp_path / "unknown_codec.mov"
    unknown.write_bytes((tmp_path / "clip.mov").read_bytes().replace(b"avc1", b"zzzz"))
    with pytest.raises(InputError, match=r"unknown_codec.mov: not a readable video \(its video stream has no "
                                         r"decoder: unknown codec or damaged header\)"):
        VideoReader(unknown)


def test_a_huge_image_is_refused_from_its_header_under_a_memory_limit(tmp_path):
    # 20000x20000 black pixels compress to ~1 MB but decode to 1.2 GB: refused before decoding.
    import subprocess
    import sys

    path = tmp_path / "huge.png"
    Image.new("L", (20000, 20000)).save(path, optimize=False, compress_level=1)
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2_000_000_000, 2_000_000_000))\n"
        "from hydranet.inference.media import read_image\n"
        "from hydranet.errors import InputError\n"
        f"try:\n    read_image({str(path)!r})\nexcept InputError as e:\n    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{path}: 20000x20000 is 400 Mpx, more than the 50 Mpx limit; downscale the image first"


def test_sigterm_during_a_video_leaves_a_playable_file_or_none(tmp_path):
    # A long video, SIGTERM after the first frames: the MP4 written so far is finished and
    # renamed into place (playable), never a half-written file; no temporary file stays.
    import signal
    import subprocess
    import sys
    import time

    video = tmp_path / "long.mp4"
    make_video(video, 400)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "hydranet", "predict", str(video), "--out", str(out),
                             "--backend", "torch", "--size", "64x96"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob(".long_panel.part.mp4")):
        time.sleep(0.1)
    time.sleep(0.3)  # a few frames into the video (the whole of it takes several seconds)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    panel = out / "long_panel.mp4"
    assert panel.is_file()
    with VideoReader(panel) as reader:
        frames = sum(1 for _ in reader)
        assert reader.error is None and 0 < frames < 400


@pytest.mark.parametrize("depth", [1, 3])
def test_ordered_map_keeps_order_with_calls_in_flight(depth):
    import threading
    import time

    from hydranet.inference.threads import ordered_map

    running, most = [0], [0]
    lock = threading.Lock()

    def slow(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05 * (i % 3))  # later items finish before earlier ones
        with lock:
            running[0] -= 1
        if i == 4:
            raise ValueError("item 4")
        return i * i

    out = list(ordered_map(slow, range(8), depth))
    assert [item for item, _, _ in out] == list(range(8))
    assert [r for i, r, _ in out if i != 4] == [i * i for i in range(8) if i != 4]
    assert str(out[4][2]) == "item 4" and out[4][1] is None
    assert most[0] == depth  # never more calls at once than asked, and that many when asked


def test_a_video_over_the_pixel_limit_is_refused_from_its_header(tmp_path):
    # Its frames would be decoded several at a time, as an over-large image would be whole.
    path = tmp_path / "big.mp4"
    make_video(path, 2, height=64, width=96)
    with pytest.raises(InputError, match=r"big.mp4: 96x64 video frames are 0 Mpx, more than the 0.005 Mpx limit; "
                                         r"downscale the video first"):
        VideoReader(path, max_pixels=5000)
    with VideoReader(path, max_pixels=None) as reader:
        assert len(list(reader)) == 2


def test_frames_larger_than_h264_allows_are_refused_in_one_line(tmp_path):
    from hydranet.inference.media import MAX_H264_SIDE, VideoWriter

    path = tmp_path / "wide.mp4"
    with pytest.raises(InputError, match=rf"wide.mp4: {MAX_H264_SIDE + 2}x16 frames are larger than H.264 allows"):
        with VideoWriter(path, 25) as writer:
            writer.write(np.zeros((16, MAX_H264_SIDE + 2, 3), np.uint8))
    assert not path.exists()
