"""Standard depth evaluation protocols: valid range caps and image crops.

Crops are fractions of the image (rows top/bottom, columns left/right) so they
apply at any resolution: KITTI's Eigen and Garg crops (Eigen et al. 2014, Garg
et al. 2016, as used by Monodepth) and the NYUDv2 Eigen crop (rows 45:471, columns
41:601 of 480x640).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

KITTI_EIGEN_CROP = (0.3324324, 0.91351351, 0.0359477, 0.96405229)
KITTI_GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
NYUD_EIGEN_CROP = (45 / 480, 471 / 480, 41 / 640, 601 / 640)


@dataclass(frozen=True)
class DepthProtocol:
    """Which pixels count: ``min_depth < gt < max_depth`` inside ``crop``; predictions are clipped too."""

    name: str
    min_depth: float = 1e-3
    max_depth: float | None = None
    crop: tuple[float, float, float, float] | None = None
    median_scaling: bool = False

    def crop_mask(self, height: int, width: int) -> np.ndarray:
        """Boolean HxW mask of the evaluated region."""
        mask = np.zeros((height, width), dtype=bool)
        if self.crop is None:
            mask[:] = True
            return mask
        top, bottom, left, right = self.crop
        mask[int(top * height):int(bottom * height), int(left * width):int(right * width)] = True
        return mask


PROTOCOLS: dict[str, DepthProtocol] = {
    "none": DepthProtocol("none"),
    "kitti_eigen": DepthProtocol("kitti_eigen", 1e-3, 80.0, KITTI_EIGEN_CROP),
    "kitti_eigen_50": DepthProtocol("kitti_eigen_50", 1e-3, 50.0, KITTI_EIGEN_CROP),
    "kitti_garg": DepthProtocol("kitti_garg", 1e-3, 80.0, KITTI_GARG_CROP),
    "kitti_garg_50": DepthProtocol("kitti_garg_50", 1e-3, 50.0, KITTI_GARG_CROP),
    "kitti_80": DepthProtocol("kitti_80", 1e-3, 80.0, None),
    "nyud_eigen": DepthProtocol("nyud_eigen", 1e-3, 10.0, NYUD_EIGEN_CROP),
    "nyud_10": DepthProtocol("nyud_10", 1e-3, 10.0, None),
}


def get_protocol(name: str, median_scaling: bool = False) -> DepthProtocol:
    """A registered protocol, optionally with per-image median scaling (for scale-ambiguous models)."""
    try:
        p = PROTOCOLS[name]
    except KeyError:
        raise InputError(f"unknown depth protocol {name!r}; choose from {', '.join(PROTOCOLS)}") from None
    if median_scaling:
        p = DepthProtocol(p.name + "+median", p.min_depth, p.max_depth, p.crop, True)
    return p
