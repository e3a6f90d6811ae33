"""The camera a phone video states in its QuickTime metadata, and its use for depth."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from predict_helpers import H, W, add_to_video_track, make_video, qt_meta
from test_predict_cli import _camera_aware_with_an_exif_photo, predict

from hydranet.inference.camera import from_focal_35mm
from hydranet.inference.media import VideoReader
from hydranet.inference.quicktime import FOCAL_35MM_KEY, quicktime_focal_35mm

pytestmark = pytest.mark.usefixtures("one_thread")

OTHER = "com.apple.quicktime.camera.lens_model"


@pytest.mark.parametrize("data_type, value, iso, expected", [
    (21, struct.pack(">b", 26), False, 26.0),              # an iPhone's 1-byte signed integer
    (22, struct.pack(">I", 52), True, 52.0),               # 4-byte unsigned, in an ISO (udta-style) meta
    (1, b"50.00mm", False, 50.0),                          # text with a unit, as some apps write it
    (23, struct.pack(">f", 13.0), False, 13.0),            # float32
    (24, struct.pack(">d", 77.5), False, 77.5),            # float64
    (21, struct.pack(">h", 0), False, None),               # unset
    (1, b"5000", False, None),                             # implausible
    (1, b"wide", False, None),                             # not a number
])
def test_focal_length_is_read_from_the_video_tracks_meta(tmp_path, data_type, value, iso, expected):
    path = tmp_path / "phone.mov"
    make_video(path, 2)
    assert quicktime_focal_35mm(path) is None  # PyAV writes no such key
    add_to_video_track(path, qt_meta({OTHER: (1, b"back camera 6.86mm f/1.5"), FOCAL_35MM_KEY: (data_type, value)},
                                     iso=iso))
    assert quicktime_focal_35mm(path) == expected
    with VideoReader(path) as reader:  # the file still decodes, and the reader states the camera
        assert len(list(reader)) == 2 and reader.error is None
        assert reader.focal_35mm == expected
        if expected is not None:
            assert reader.camera_for(H, W) == from_focal_35mm(expected, H, W)


def test_files_that_are_not_iso_media_or_are_damaged_state_no_focal_length(tmp_path):
    path = tmp_path / "phone.mov"
    make_video(path, 2)
    add_to_video_track(path, qt_meta({FOCAL_35MM_KEY: (21, b"\x1a")}))
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    cases = {"random.mov": rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), "empty.mp4": b"",
             "mkv.mkv": b"\x1a\x45\xdf\xa3" + bytes(100), "cut.mov": data[: len(data) - 40],
             "huge_atom.mov": struct.pack(">I4s", 1, b"moov") + struct.pack(">Q", 1 << 62)}
    for name, payload in cases.items():
        (tmp_path / name).write_bytes(payload)
        assert quicktime_focal_35mm(tmp_path / name) is None, name
    # Every one-byte corruption of the meta atom either still reads or reads as absent, never raises.
    meta_at = data.rindex(b"meta") - 4
    for offset in range(meta_at, len(data), 3):
        broken = bytearray(data)
        broken[offset] ^= 0xFF
        (tmp_path / "broken.mov").write_bytes(bytes(broken))
        assert quicktime_focal_35mm(tmp_path / "broken.mov") in (None, 26.0)
    assert quicktime_focal_35mm(tmp_path / "missing.mov") is None


def test_a_phone_videos_focal_length_is_its_camera_when_none_is_given(tmp_path, small_weights, capsys):
    weights = _camera_aware_with_an_exif_photo(small_weights, tmp_path)
    make_video(tmp_path / "v.mov", 3)
    add_to_video_track(tmp_path / "v.mov", qt_meta({FOCAL_35MM_KEY: (21, b"\x1a")}))  # 26 mm
    camera = from_focal_35mm(26, H, W)

    def run(out: str, *options: str) -> str:
        assert predict(tmp_path / "v.mov", "--weights", weights, "--out", tmp_path / out, "--save", "raw",
                       *options) == 0
        return capsys.readouterr().out

    stdout = run("from_file", "--pointcloud")  # 3D outputs accept the video's own camera
    assert "camera from the file's 26 mm equivalent focal length" in stdout
    run("stated", "--intrinsics", f"{camera.fx!r},{camera.fy!r},{camera.cx!r},{camera.cy!r}")
    run("ignored", "--ignore-exif")
    frame = "v_raw/000001_depth.npy"
    from_file = np.load(tmp_path / "from_file" / frame)
    np.testing.assert_allclose(from_file, np.load(tmp_path / "stated" / frame), rtol=1e-6)
    assert not np.allclose(from_file, np.load(tmp_path / "ignored" / frame), rtol=0.01)
    assert (tmp_path / "from_file" / "v_pointcloud" / "000001.ply").is_file()
    record = json.loads((tmp_path / "from_file" / "v_raw.json").read_text())["camera"]
    assert record["source"].startswith("QuickTime") and record["fx"] == pytest.approx(camera.fx, abs=1e-3)
    # A video stating nothing still refuses 3D outputs before any work, naming the file.
    make_video(tmp_path / "plain.mp4", 2)
    assert predict(tmp_path / "plain.mp4", "--weights", weights, "--out", tmp_path / "pc", "--pointcloud") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "plain.mp4 states no focal length in its metadata" in err
    assert not (tmp_path / "pc").exists() or not any((tmp_path / "pc").iterdir())


def test_atoms_nested_without_end_are_not_followed(tmp_path):
    # 20,000 trak atoms inside each other: a recursive reader without a bound would overflow.
    inner = qt_meta({FOCAL_35MM_KEY: (21, b"\x1a")})
    for _ in range(20_000):
        inner = struct.pack(">I4s", 8 + len(inner), b"trak") + inner
    moov = struct.pack(">I4s", 8 + len(inner), b"moov") + inner
    (tmp_path / "deep.mov").write_bytes(moov)
    assert quicktime_focal_35mm(tmp_path / "deep.mov") is None
    shallow = struct.pack(">I4s", 8 + len(qt_meta({FOCAL_35MM_KEY: (21, b"\x1a")})), b"trak") + \
        qt_meta({FOCAL_35MM_KEY: (21, b"\x1a")})
    (tmp_path / "shallow.mov").write_bytes(struct.pack(">I4s", 8 + len(shallow), b"moov") + shallow)
    assert quicktime_focal_35mm(tmp_path / "shallow.mov") == 26.0
