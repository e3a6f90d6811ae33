"""How right two-view motion depth is on real frames: KITTI odometry 06, frames 12-14.

    python benchmarks/motion_depth_check.py [--data ../shared/data/video_kitti06]

``hydranet pseudo-depth --motion-step`` triangulates static surfaces between two frames of
a drive (hydranet.data.motion_depth). Here frame 12 is paired with frames 13 and 14
(about 1.2 and 2.4 m ahead), with the pose estimated from the images as the CLI does and,
for comparison, with the sequence's ground-truth pose. Depth is in units of the baseline,
so it is scaled by the true baseline length, and compared with semi-global block matching
on frame 12's own stereo pair (OpenCV SGBM, 0.54 m baseline: itself a few per cent off
beyond 40 m). Pixels: motion confidence >= 0.5 and a stereo depth within 80 m. Prints
abs rel (mean and median) overall and by stereo distance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BINS = ((0, 10), (10, 20), (20, 40), (40, 80))


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _camera(path: Path) -> tuple[np.ndarray, float]:
    values = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        if key.strip() in ("Camera.fx", "Camera.fy", "Camera.cx", "Camera.cy", "Camera.bf"):
            values[key.strip()] = float(rest.split("#")[0])
    K = np.array([[values["Camera.fx"], 0, values["Camera.cx"]], [0, values["Camera.fy"], values["Camera.cy"]],
                  [0, 0, 1]])
    return K, values["Camera.bf"]


def main(argv: list[str] | None = None) -> int:
    import cv2

    from hydranet.data import motion_depth as md

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "video_kitti06"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    camera = next(data.glob("camera_*.yaml"), None) if data.is_dir() else None
    if camera is None or not (data / "poses_06.txt").is_file():
        print(f"{data}: not the KITTI 06 video folder (000012_left.png ..., camera_*.yaml, poses_06.txt)",
              file=sys.stderr)
        return 2
    K, bf = _camera(camera)
    poses = np.loadtxt(data / "poses_06.txt").reshape(-1, 3, 4)

    def world(i: int) -> np.ndarray:
        out = np.eye(4)
        out[:3] = poses[i]
        return out

    left, right = _read(data / "000012_left.png"), _read(data / "000012_right.png")
    sgbm = cv2.StereoSGBM_create(0, 128, 5, P1=600, P2=2400, uniquenessRatio=10, speckleWindowSize=100,
                                 speckleRange=2, disp12MaxDiff=1, mode=cv2.STEREO_SGBM_MODE_HH)
    disp = sgbm.compute(cv2.cvtColor(left, cv2.COLOR_RGB2GRAY),
                        cv2.cvtColor(right, cv2.COLOR_RGB2GRAY)).astype(np.float32) / 16
    stereo = np.where(disp > 1, bf / np.maximum(disp, 1e-3), 0.0)
    print("frames      pose       pixels  abs rel  median | " + "  ".join(f"{a}-{b} m" for a, b in BINS))
    for j in (13, 14):
        motion = np.linalg.inv(world(j)) @ world(12)  # camera 12 -> camera j
        baseline = float(np.linalg.norm(motion[:3, 3]))
        for pose_name, pose in (("estimated", None), ("true", (motion[:3, :3], motion[:3, 3]))):
            r = md.two_view_depth(left, _read(data / f"{j:06d}_left.png"), K, pose=pose)
            if r is None:
                print(f"12 -> {j}   {pose_name:9s}  no pose")
                continue
            depth = r.depth * baseline
            ok = (r.confidence >= 0.5) & (stereo > 0) & (stereo < 80)
            rel = np.abs(depth - stereo) / np.where(stereo > 0, stereo, 1)
            cells = []
            for lo, hi in BINS:
                m = ok & (stereo >= lo) & (stereo < hi)
                cells.append(f"{rel[m].mean():.3f} ({m.sum()})" if m.any() else "-")
            print(f"12 -> {j}   {pose_name:9s} {ok.sum():7d}  {rel[ok].mean():.3f}   {np.median(rel[ok]):.3f} | "
                  + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
