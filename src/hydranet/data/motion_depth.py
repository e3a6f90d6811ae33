"""Two-view motion depth: far-range depth for real frames from the next frame of their video.

Flat-ground pseudo-depth (:mod:`hydranet.data.pseudo_depth`) places what stands on a
visible patch of road; a facade whose ground contact is hidden, or that is simply far,
gets nothing. Two frames of the same drive a second apart see every static surface
from two places, and its depth follows from the parallax:

1. SIFT matches between the frames on static classes give the essential matrix
   (RANSAC, known focal length), hence the rotation ``R`` and the direction of the
   translation ``t`` (unit length: depth is known up to one scale per pair).
2. Dense optical flow (DIS) both ways gives a correspondence for every pixel; pixels
   whose forward-backward flow does not return within ``max_flow_error`` pixels, or
   that lie farther than ``max_epipolar`` pixels from their epipolar line, are dropped.
3. Each correspondence is triangulated along the first camera's ray. The parallax
   ``p`` (flow left after removing the rotation, in pixels) sets the confidence: a flow
   error of ``flow_error`` pixels changes depth by about ``flow_error / p``, and the
   confidence is ``1 - (flow_error / p) / max_relative_error``.
4. The pair's scale comes from the frame's flat-ground depth on road and pavement
   (median ratio), so motion depth is in the same metric units as the rest.

Only static classes are kept (moving cars and people break the geometry); sky is
never placed. For a camera moving forward, the depth of a point seen at ``r`` pixels
from the epipole does not depend on the focal length (``z = t r' / (r' - r)``), so an
assumed focal length costs little.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..labels import LabelSet
from .pseudo_depth import GROUND_CLASSES, class_ids

# Classes that do not move: their pixels may be matched and triangulated.
STATIC_CLASSES: tuple[str, ...] = GROUND_CLASSES + ("building", "wall", "pole", "tree", "vegetation", "sign",
                                                    "traffic sign", "traffic light", "fence", "terrain")
# Of those, the ones whose motion depth replaces flat-ground depth when both exist: the
# ground itself is the scale reference and stays flat-ground.
MOTION_CLASSES: tuple[str, ...] = tuple(c for c in STATIC_CLASSES if c not in GROUND_CLASSES)


@dataclass
class MotionDepth:
    """Depth of the first frame in units of the baseline (``|t| = 1``), with its confidence."""

    depth: np.ndarray  # float32 (H, W), 0 = none
    confidence: np.ndarray  # float32 (H, W) in [0, 1]
    rotation: np.ndarray  # 3x3, first camera -> second
    translation: np.ndarray  # unit 3-vector, first camera -> second
    matches: int  # essential-matrix inliers
    parallax_px: float  # median parallax of the kept pixels


def _gray(image: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(image)
    if image.ndim == 3:
        return cv2.cvtColor(np.ascontiguousarray(image[..., :3]).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return image.astype(np.uint8)


def relative_pose(gray_a: np.ndarray, gray_b: np.ndarray, intrinsics: np.ndarray,
                  mask_a: np.ndarray | None = None, *, min_matches: int = 40
                  ) -> tuple[np.ndarray, np.ndarray, int] | None:
    """``(R, t, inliers)`` from frame a to frame b (``x_b = R x_a + t``, ``|t| = 1``), or None.

    None when fewer than ``min_matches`` SIFT matches survive the ratio test and RANSAC,
    as happens when the car stood still or the view changed completely.
    """
    import cv2

    sift = cv2.SIFT_create(nfeatures=4000, contrastThreshold=0.01)
    m = None if mask_a is None else mask_a.astype(np.uint8) * 255
    ka, da = sift.detectAndCompute(gray_a, m)
    kb, db = sift.detectAndCompute(gray_b, None)
    if da is None or db is None or len(ka) < min_matches or len(kb) < min_matches:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(da, db, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]
    if len(good) < min_matches:
        return None
    pa = np.float64([ka[g.queryIdx].pt for g in good])
    pb = np.float64([kb[g.trainIdx].pt for g in good])
    K = np.asarray(intrinsics, dtype=np.float64)
    try:
        E, inl = cv2.findEssentialMat(pa, pb, K, method=cv2.RANSAC, prob=0.999, threshold=1.0)
    except cv2.error:  # degenerate matches (all on one line, no motion)
        return None
    if E is None or E.shape != (3, 3) or inl is None:
        return None
    n, R, t, _ = cv2.recoverPose(E, pa, pb, K, mask=inl.copy())
    if n < min_matches:
        return None
    return R, t.reshape(3) / max(np.linalg.norm(t), 1e-12), int(n)


def two_view_depth(image_a: np.ndarray, image_b: np.ndarray, intrinsics: np.ndarray,
                   static_a: np.ndarray | None = None, *, flow_error: float = 1.0,
                   max_relative_error: float = 0.2, max_flow_error: float = 1.0,
                   max_epipolar: float = 1.0, min_matches: int = 40,
                   max_photometric: float = 12.0,
                   pose: tuple[np.ndarray, np.ndarray] | None = None) -> MotionDepth | None:
    """Depth of ``image_a`` (up to scale) from its parallax towards ``image_b``; None if the pose fails.

    ``static_a`` (bool, H x W) marks the pixels of ``image_a`` that may be used; ``pose``
    ``(R, t)`` skips the pose estimate (a known ego-motion; ``t`` is normalised).
    """
    import cv2

    ga, gb = _gray(image_a), _gray(image_b)
    if ga.shape != gb.shape:
        raise InputError(f"two frames of different sizes: {ga.shape} and {gb.shape}")
    height, width = ga.shape
    K = np.asarray(intrinsics, dtype=np.float64)
    static = np.ones((height, width), bool) if static_a is None else np.asarray(static_a, bool)
    matches = 0
    if pose is None:
        found = relative_pose(ga, gb, K, static, min_matches=min_matches)
        if found is None:
            return None
        R, t, matches = found
    else:
        R = np.asarray(pose[0], dtype=np.float64)
        t = np.asarray(pose[1], dtype=np.float64).reshape(3)
        t = t / max(np.linalg.norm(t), 1e-12)

    # Flow is found between frame a and frame b turned back to a's orientation (the
    # homography of the plane at infinity), so that only the translational parallax is
    # left to find: a car turning between two frames a second apart moves everything by
    # a hundred pixels, most of which is rotation.
    Kinv = np.linalg.inv(K)
    h_inf = K @ R @ Kinv
    gb_rot = cv2.warpPerspective(gb, h_inf, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    seen = cv2.warpPerspective(np.ones_like(gb), h_inf, (width, height),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    fab = dis.calc(ga, gb_rot, None)
    fba = dis.calc(gb_rot, ga, None)
    u, v = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    ur, vr = u + fab[..., 0], v + fab[..., 1]
    back = cv2.remap(fba, ur, vr, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
    fb = np.hypot(fab[..., 0] + back[..., 0], fab[..., 1] + back[..., 1])
    inside = (ur >= 0) & (ur <= width - 1) & (vr >= 0) & (vr <= height - 1)
    inside &= cv2.remap(seen.astype(np.uint8), ur, vr, cv2.INTER_NEAREST) > 0
    # Flow that is consistent both ways can still be wrong where a pattern repeats (branches
    # against the sky, railings): the matched pixel must also look the same.
    warped = cv2.remap(gb_rot, ur, vr, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    photometric = np.abs(cv2.GaussianBlur(ga, (3, 3), 0).astype(np.float32)
                         - cv2.GaussianBlur(warped, (3, 3), 0).astype(np.float32))
    # Back to frame b's own pixels.
    hb = np.stack([ur, vr, np.ones_like(ur)], -1).astype(np.float64) @ h_inf.T
    ub = hb[..., 0] / hb[..., 2]
    vb = hb[..., 1] / hb[..., 2]

    ray_a = np.stack([u, v, np.ones_like(u)], -1).astype(np.float64) @ Kinv.T  # z = 1
    xb = np.stack([ub, vb, np.ones_like(ub)], -1).astype(np.float64) @ Kinv.T
    rot = ray_a @ R.T  # the ray seen from camera b's orientation
    # z_a * (xb x R ray) = -(xb x t): least squares along the ray.
    a = np.cross(xb, rot)
    b = np.cross(xb, np.broadcast_to(t, xb.shape))
    depth = -(a * b).sum(-1) / np.maximum((a * a).sum(-1), 1e-18)

    # Epipolar distance in pixels, and the translational parallax: the flow left once the
    # rotation is undone (what a point at infinity would do).
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    F = Kinv.T @ tx @ R @ Kinv
    pa_h = np.stack([u, v, np.ones_like(u)], -1).astype(np.float64)
    pb_h = np.stack([ub, vb, np.ones_like(ub)], -1).astype(np.float64)
    line = pa_h @ F.T
    epi = np.abs((line * pb_h).sum(-1)) / np.maximum(np.hypot(line[..., 0], line[..., 1]), 1e-12)
    inf_h = rot @ K.T
    inf_px = inf_h[..., :2] / np.where(np.abs(inf_h[..., 2:]) > 1e-9, inf_h[..., 2:], 1e-9)
    parallax = np.hypot(ub - inf_px[..., 0], vb - inf_px[..., 1])

    # The point must lie in front of both cameras.
    zb = depth * rot[..., 2] + t[2]
    rel_err = flow_error / np.maximum(parallax, 1e-6)
    ok = (static & inside & np.isfinite(fb) & (fb <= max_flow_error) & (epi <= max_epipolar)
          & (photometric <= max_photometric)
          & (depth > 0) & (zb > 0) & (rel_err < max_relative_error))
    conf = np.where(ok, np.clip(1.0 - rel_err / max_relative_error, 0.0, 1.0), 0.0).astype(np.float32)
    out = np.where(ok, depth, 0.0).astype(np.float32)
    return MotionDepth(depth=out, confidence=conf, rotation=R, translation=t, matches=matches,
                       parallax_px=float(np.median(parallax[ok])) if ok.any() else 0.0)


def scale_to(motion: MotionDepth, reference: np.ndarray, reference_mask: np.ndarray, *,
             min_pixels: int = 200, min_confidence: float = 0.5, max_spread: float = 0.15) -> float | None:
    """The factor that brings ``motion`` to ``reference``'s units: the median ratio on pixels both place.

    Only motion pixels of at least ``min_confidence`` count. None when fewer than
    ``min_pixels`` pixels overlap, or when the two disagree in shape: once scaled, their
    median ``|log(motion / reference)|`` exceeds ``max_spread`` (a wrong pose, a moving
    background or a wrong reference; two sound estimates of one scene agree to ~8 %).
    """
    both = ((motion.depth > 0) & (motion.confidence >= min_confidence) & (reference > 0)
            & np.asarray(reference_mask, bool))
    if int(both.sum()) < min_pixels:
        return None
    ratio = reference[both] / motion.depth[both]
    scale = float(np.median(ratio))
    if float(np.median(np.abs(np.log(ratio / scale)))) > max_spread:
        return None
    return scale


def merge(flat: np.ndarray, flat_confidence: np.ndarray, motion: np.ndarray, motion_confidence: np.ndarray,
          labels: np.ndarray, label_set: str | LabelSet, classes: tuple[str, ...] = MOTION_CLASSES
          ) -> tuple[np.ndarray, np.ndarray]:
    """Flat-ground depth with motion depth filling in, on ``classes``, what it leaves out.

    Motion depth goes only where flat-ground depth is missing or below 0.5 confidence:
    where the ground contact is seen, the flat-ground geometry is the better-tested of the two.
    """
    take = (np.isin(np.asarray(labels), class_ids(label_set, classes)) & (motion > 0)
            & ((flat <= 0) | (flat_confidence < 0.5)) & (motion_confidence > np.where(flat > 0, flat_confidence, 0.0)))
    return np.where(take, motion, flat).astype(np.float32), np.where(take, motion_confidence,
                                                                     flat_confidence).astype(np.float32)


def above_its_ground(motion: np.ndarray, flat: np.ndarray, flat_confidence: np.ndarray, labels: np.ndarray,
                     label_set: str | LabelSet, *, ratio: float = 0.5) -> np.ndarray:
    """Motion-depth pixels that are not impossibly near: ``False`` where a pixel lies nearer than
    ``ratio`` times the farthest confidently placed ground (flat-ground road or pavement) seen
    below it in its column.

    Whatever is seen above a patch of ground, in the same column, stands on or behind it: a
    facade, pole or tree nearer than the road in front of it is a triangulation error (bare
    branches against the sky matched to the wrong twig, seen a few metres away instead of
    twenty). ``ratio`` leaves room for what overhangs towards the camera, such as a tree's crown.
    """
    motion = np.asarray(motion, np.float32)
    ground = np.isin(np.asarray(labels), class_ids(label_set, GROUND_CLASSES)) & (flat > 0) & (flat_confidence >= 0.5)
    # The farthest ground at or below each row, per column: a running maximum from the bottom up.
    below = np.maximum.accumulate(np.where(ground, flat, 0.0)[::-1], axis=0)[::-1]
    return ~((motion > 0) & (motion < ratio * below))


def static_mask(labels: np.ndarray, label_set: str | LabelSet, classes: tuple[str, ...] = STATIC_CLASSES
                ) -> np.ndarray:
    """Pixels whose label is one of ``classes`` (names a label set lacks are skipped)."""
    return np.isin(np.asarray(labels), class_ids(label_set, classes))


__all__ = ["MOTION_CLASSES", "STATIC_CLASSES", "MotionDepth", "above_its_ground", "merge", "relative_pose", "scale_to",
           "static_mask", "two_view_depth"]
