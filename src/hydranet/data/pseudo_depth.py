"""Flat-ground pseudo-depth: a metric depth signal for real frames that have labels but no depth.

A camera ``h`` metres above a flat road, with its horizon at row ``v0`` and focal
length ``f`` (pixels), sees a road pixel of row ``v`` at depth ``z = f * h / (v - v0)``
along the optical axis. With ~zero roll and pitch a vertical world line is an image
column of constant ``z``, so an object standing on the ground (car, pole, building
facade ...) takes, in each column, the depth of its ground contact: the row just
below the bottom of its vertical run of pixels, when that row is ground. Sky is
missing, and so is anything the geometry cannot place.

The camera is estimated per sequence from the labels themselves: on a straight
flat road the road's width in pixels is linear in ``v - v0`` (both edges are lines
through the vanishing point), so the zero-crossing of a robust line through
width-vs-row is the horizon of that frame, and a sequence takes the median. The
pixel heights of pedestrians and cars, ``p = H * (v_contact - v0) / h``, give an
independent horizon (zero-crossing again) and, with ``H ~ 1.7 m`` for pedestrians,
a check of the camera height that needs no focal length.

Depth scales with ``f``: ``z * (f_c / f) = f_c * h / (v - v0)``, so a trainer that
works in canonical-focal units needs only ``h`` and ``v0``; metric files are still
written for an assumed focal, which :func:`write_pseudo_depth_meta` records.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..fileio import atomic_path
from ..labels import LabelSet, get_label_set

MAX_DEPTH = 80.0  # metres; the default model's depth range
DEFAULT_CAMERA_HEIGHT = 1.25  # metres; CamVid's camera sat on a car's dashboard
DEFAULT_HFOV = 60.0  # degrees; an assumed lens (the synthetic drive's), only when no focal is given
# Class names are CamVid-11's, plus the other label sets' names for the same things
# (kitti6, cityscapes19); names a label set lacks are skipped.
GROUND_CLASSES: tuple[str, ...] = ("road", "pavement", "sidewalk")
_PEOPLE = ("pedestrian", "bicyclist", "person", "rider")
_VEHICLES = ("car", "truck", "bus", "train", "motorcycle", "bicycle")
STANDING_CLASSES: tuple[str, ...] = ("building", "wall", "pole", "tree", "vegetation", "sign", "traffic sign",
                                     "traffic light", "fence") + _VEHICLES + _PEOPLE
SKY_CLASSES: tuple[str, ...] = ("sky",)
# Things on the road whose outline, not the kerb, ends the visible road in a row.
OCCLUDER_CLASSES: tuple[str, ...] = _VEHICLES + _PEOPLE
# Typical heights (metres) used to check the camera height from object sizes.
REFERENCE_HEIGHTS: dict[str, float] = {"pedestrian": 1.7, "person": 1.7}
# Surfaces above the road plane (metres): a kerbed pavement (UK kerbs show 100-125 mm).
SURFACE_HEIGHTS: dict[str, float] = {"pavement": 0.12, "sidewalk": 0.12}
# Classes whose lowest pixels touch the ground only in places (wheels, feet, a trunk).
ENVELOPE_CLASSES: tuple[str, ...] = _VEHICLES + _PEOPLE + ("tree",)
# Classes mounted on another standing class, whose contact they share (a sign on its pole).
MOUNTED_CLASSES: dict[str, tuple[str, ...]] = {"sign": ("pole",), "traffic sign": ("pole",),
                                               "traffic light": ("pole",)}
# Height above the ground contact (metres) beyond which a class's pixels lose confidence as
# tall_height / height: a tree's canopy spreads beyond its trunk, a bus seen above a car in
# front shares that car's vertical run; facades and poles stay vertical much higher.
TALL_HEIGHTS: dict[str, float] = {"tree": 2.0, "vegetation": 2.0, **{n: 2.0 for n in _PEOPLE},
                                  "car": 2.0, "motorcycle": 2.0, "bicycle": 2.0, "truck": 4.0, "bus": 4.0,
                                  "train": 4.0}
META_FILE = "pseudo_depth.json"
DEPTH_SCALE = 256.0  # KITTI's uint16 convention: metres x 256, 0 = none
METHOD = "flat-ground"


def _label_set(label_set: str | LabelSet) -> LabelSet:
    if isinstance(label_set, LabelSet):
        return label_set
    try:
        return get_label_set(label_set)
    except KeyError as exc:
        raise InputError(str(exc).strip("'\"")) from None


def class_ids(label_set: str | LabelSet, names: Iterable[str]) -> np.ndarray:
    """Ids of ``names`` in ``label_set``; names the set does not have are skipped (e.g. no fence)."""
    ls = _label_set(label_set)
    index = {n.lower(): i for i, n in enumerate(ls.class_names)}
    return np.array(sorted({index[n.lower()] for n in names if n.lower() in index}), dtype=np.int64)


def _class_mask(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return np.isin(labels, ids) if ids.size else np.zeros(labels.shape, bool)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0:
        raise InputError(f"labels must be a non-empty HxW array of class ids, got shape {labels.shape}")
    return labels.astype(np.int64)


def _upper_envelope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The smallest concave function >= the points (x increasing), evaluated at ``x``.

    With rows growing downwards this runs through an object's lowest points (wheels,
    feet) and bridges what hangs above the ground between them (a bumper, a crotch).
    """
    hull: list[int] = []
    for i in range(len(x)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b when it lies on or below the chord a -> i
            if (y[b] - y[a]) * (x[i] - x[a]) <= (y[i] - y[a]) * (x[b] - x[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return np.interp(x, x[hull], y[hull])


def flat_ground_depth(labels: np.ndarray, horizon: float, camera_height: float, focal: float, *,
                      label_set: str | LabelSet = "camvid11",
                      ground_classes: Sequence[str] = GROUND_CLASSES,
                      standing_classes: Sequence[str] = STANDING_CLASSES,
                      sky_classes: Sequence[str] = SKY_CLASSES,
                      surface_heights: Mapping[str, float] = SURFACE_HEIGHTS,
                      envelope_classes: Sequence[str] = ENVELOPE_CLASSES,
                      tall_heights: Mapping[str, float] = TALL_HEIGHTS,
                      mounted_classes: Mapping[str, Sequence[str]] = MOUNTED_CLASSES,
                      max_depth: float = MAX_DEPTH, min_offset: float = 4.0,
                      horizon_error: float = 5.0, tall_height: float = 6.0,
                      max_gap: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-depth (float32 metres, 0 = missing) and confidence in [0, 1] (0 = invalid) from labels.

    ``horizon`` is the horizon row in pixel-index coordinates, ``focal`` in pixels at the
    labels' resolution, ``camera_height`` in metres above the road. A ground class in
    ``surface_heights`` lies that much above the road (a kerbed pavement). Rows fewer than
    ``min_offset`` below the horizon are invalid (their depth explodes); so is anything
    farther than ``max_depth``, sky, unlabelled pixels (ids outside ``label_set``) and
    objects whose vertical run does not end on ground. Up to ``max_gap`` unlabelled rows
    between an object and the ground are bridged (annotators leave seams there). For
    ``envelope_classes`` the contact of each instance follows the concave envelope of its
    lowest pixels, so the road seen under a car or between a pedestrian's legs does not
    push the object back. A class in ``mounted_classes`` standing on one of its supports
    (a sign on a pole) takes the support's contact.

    Confidence is ``1 - horizon_error / (v - v0)`` (the first-order relative depth change
    if the horizon were ``horizon_error`` rows off) at the pixel's row or its contact row,
    times, for object pixels more than ``tall_height`` metres (per class: ``tall_heights``)
    above their contact, ``tall_height / height`` (tall runs are likelier to lean, overhang,
    be set back or hide an occlusion).
    """
    from scipy import ndimage

    lab = _check_labels(labels)
    if not (camera_height > 0 and focal > 0 and math.isfinite(horizon)):
        raise InputError(f"need camera_height > 0, focal > 0 and a finite horizon; got "
                         f"{camera_height}, {focal}, {horizon}")
    ls = _label_set(label_set)
    H, W = lab.shape
    ground = _class_mask(lab, class_ids(ls, ground_classes))
    standing = _class_mask(lab, class_ids(ls, standing_classes))
    void = (lab < 0) | (lab >= ls.num_classes)
    # Camera height above each pixel's surface (only meaningful on ground pixels).
    lift = np.zeros(ls.num_classes + 1)
    for name, dz in surface_heights.items():
        for i in class_ids(ls, [name]):
            lift[i] = dz
    tall = np.full(ls.num_classes + 1, float(tall_height))
    for name, t in tall_heights.items():
        for i in class_ids(ls, [name]):
            tall[i] = t
    eye = camera_height - lift[np.clip(lab, 0, ls.num_classes)]
    rows = np.arange(H, dtype=np.float64)
    depth = np.zeros((H, W), np.float64)
    conf = np.zeros((H, W), np.float64)

    def confidence(dv: np.ndarray) -> np.ndarray:
        return np.clip(1.0 - horizon_error / np.maximum(dv, 1e-9), 0.0, 1.0)

    # Ground: the flat-road formula itself.
    dv = np.broadcast_to((rows - horizon)[:, None], (H, W))
    ok = ground & (dv >= min_offset)
    depth[ok] = focal * eye[ok] / dv[ok]
    conf[ok] = confidence(dv[ok])

    # Standing objects: the bottom row of each same-class vertical run (a car below a
    # building is its occluder, not its support, so runs never mix classes) ...
    bottom = np.full((H, W), -1, np.int64)
    top = np.full((H, W), -1, np.int64)
    bottom[H - 1] = np.where(standing[H - 1], H - 1, -1)
    for v in range(H - 2, -1, -1):
        same = standing[v] & (lab[v] == lab[v + 1])
        bottom[v] = np.where(same, bottom[v + 1], np.where(standing[v], v, -1))
    top[0] = np.where(standing[0], 0, -1)
    for v in range(1, H):
        same = standing[v] & (lab[v] == lab[v - 1])
        top[v] = np.where(same, top[v - 1], np.where(standing[v], v, -1))
    # ... and the first labelled row below each row (skipping unlabelled seams).
    below = np.full((H, W), H, np.int64)
    for v in range(H - 2, -1, -1):
        below[v] = np.where(void[v + 1], below[v + 1], v + 1)
    cols = np.broadcast_to(np.arange(W), (H, W))
    b = np.where(standing, bottom, 0)
    nxt = np.where(standing, below[b, cols], H)
    nxt_c = np.minimum(nxt, H - 1)
    valid = standing & (nxt < H) & (nxt - b - 1 <= max_gap) & ground[nxt_c, cols]
    contact = np.where(valid, nxt_c - 0.5, np.nan)  # the boundary between object and ground
    contact_eye = np.where(valid, eye[nxt_c, cols], camera_height)

    # Instances of wheeled or legged classes: contact on the envelope of their lowest points.
    for k in class_ids(ls, envelope_classes):
        comp, _n = ndimage.label(lab == k)
        for i, sl in enumerate(ndimage.find_objects(comp), 1):
            if sl is None:
                continue
            mask = comp[sl] == i
            us = np.flatnonzero(mask.any(axis=0))
            low = sl[0].start + (mask.shape[0] - 1 - np.argmax(mask[::-1, us], axis=0))
            ucols = us + sl[1].start
            ok_cols = valid[low, ucols]
            if ok_cols.sum() < 2:
                continue
            uc, lc = ucols[ok_cols], low[ok_cols]
            own = contact[lc, uc]
            env = _upper_envelope(uc.astype(np.float64), own)
            height = (lc - top[lc, uc] + 1).astype(np.float64)
            # More than the run's own height of lift means the envelope bridged two objects.
            use = env - own <= height
            new = np.where(use, env, own)
            for u, lo, c in zip(uc, lc, new):
                run = slice(top[lo, u], lo + 1)
                contact[run, u] = c
    for name, supports in mounted_classes.items():
        mid = class_ids(ls, [name])
        sup = class_ids(ls, supports)
        if not (mid.size and sup.size):
            continue
        mv, mu = np.nonzero(_class_mask(lab, mid) & ~valid & (nxt < H) & (nxt - b - 1 <= max_gap))
        rest = nxt_c[mv, mu]
        on = np.isin(lab[rest, mu], sup) & valid[rest, mu]
        mv, mu, rest = mv[on], mu[on], rest[on]
        contact[mv, mu] = contact[rest, mu]
        contact_eye[mv, mu] = contact_eye[rest, mu]
        valid[mv, mu] = True
    cdv = contact - horizon
    obj = valid & (cdv >= min_offset)
    vs, us = np.nonzero(obj)
    cdv_o = cdv[vs, us]
    e = contact_eye[vs, us]
    height_above = e * (contact[vs, us] - vs) / cdv_o
    depth[vs, us] = focal * e / cdv_o
    conf[vs, us] = confidence(cdv_o) * np.minimum(1.0, tall[lab[vs, us]] / np.maximum(height_above, 1e-9))

    far = (depth > max_depth) | _class_mask(lab, class_ids(ls, sky_classes))  # sky: no depth
    depth[far] = 0.0
    conf[far] = 0.0
    conf[depth <= 0] = 0.0  # sky, unlabelled, other classes, objects without a ground contact
    return depth.astype(np.float32), conf.astype(np.float32)


# -- camera from labels -------------------------------------------------------------------

def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the Theil-Sen line (median of pairwise slopes): robust to ~29 % outliers."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    i, j = np.triu_indices(len(x), 1)
    dx = x[j] - x[i]
    keep = dx != 0
    if not keep.any():
        return float("nan"), float("nan")
    slope = float(np.median((y[j] - y[i])[keep] / dx[keep]))
    return slope, float(np.median(y - slope * x))


def road_edges(labels: np.ndarray, label_set: str | LabelSet = "camvid11",
               road_classes: Sequence[str] = ("road",),
               occluder_classes: Sequence[str] = OCCLUDER_CLASSES) -> tuple[np.ndarray, ...]:
    """Per row: the leftmost and rightmost road pixel and whether each is a real road edge.

    An end is a real edge when it lies inside the image and the pixel beyond it is
    neither an occluder nor unlabelled. Returns ``(rows, left, right, left_ok, right_ok)``
    for the rows that show any road.
    """
    lab = _check_labels(labels)
    ls = _label_set(label_set)
    _, W = lab.shape
    road = _class_mask(lab, class_ids(ls, road_classes))
    blocked = _class_mask(lab, class_ids(ls, occluder_classes)) | (lab < 0) | (lab >= ls.num_classes)
    rows = np.flatnonzero(road.any(axis=1))
    left = np.argmax(road[rows], axis=1)
    right = W - 1 - np.argmax(road[rows, ::-1], axis=1)
    left_ok = (left > 0) & ~blocked[rows, np.maximum(left - 1, 0)]
    right_ok = (right < W - 1) & ~blocked[rows, np.minimum(right + 1, W - 1)]
    return rows, left, right, left_ok, right_ok


def road_width_rows(labels: np.ndarray, label_set: str | LabelSet = "camvid11",
                    road_classes: Sequence[str] = ("road",),
                    occluder_classes: Sequence[str] = OCCLUDER_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Rows where the road's full width is visible (both ends are real edges), and that width."""
    rows, left, right, left_ok, right_ok = road_edges(labels, label_set, road_classes, occluder_classes)
    ok = left_ok & right_ok & (right - left >= 2)
    return rows[ok].astype(np.float64), (right[ok] - left[ok] + 1).astype(np.float64)


def _good_fit(x: np.ndarray, y: np.ndarray, slope: float, intercept: float, scale: float,
              max_residual: float) -> bool:
    return bool(np.median(np.abs(y - (slope * x + intercept))) <= max_residual * scale)


def estimate_horizon(labels: np.ndarray, label_set: str | LabelSet = "camvid11", *,
                     road_classes: Sequence[str] = ("road",),
                     occluder_classes: Sequence[str] = OCCLUDER_CLASSES,
                     min_rows: int = 12, max_residual: float = 0.1,
                     use_edges: bool = True) -> float | None:
    """One frame's horizon row from the road's edges, or None when the frame does not show enough road.

    Both edges of a straight flat road are lines through its vanishing point, so its width
    is ``k * (v - v0)``: v0 is the zero-crossing of a Theil-Sen line through (row, width)
    over rows where both edges are seen. When fewer than ``min_rows`` rows show both, and
    ``use_edges``, each edge gets its own line (over rows where that edge is seen) and v0
    is their crossing. Rejected: too few rows, a road that does not narrow upwards, a
    horizon below the road it was fitted to, or a median residual above ``max_residual``
    of the median width (curves, junctions).
    """
    rows, left, right, left_ok, right_ok = road_edges(labels, label_set, road_classes, occluder_classes)
    if rows.size == 0:
        return None
    both = left_ok & right_ok & (right - left >= 2)
    v0: float | None = None
    if both.sum() >= min_rows:
        r = rows[both].astype(np.float64)
        w = (right[both] - left[both] + 1).astype(np.float64)
        slope, intercept = theil_sen(r, w)
        if math.isfinite(slope) and slope > 0 and _good_fit(r, w, slope, intercept, float(np.median(w)),
                                                            max_residual):
            v0 = -intercept / slope
    elif use_edges and left_ok.sum() >= min_rows and right_ok.sum() >= min_rows:
        rl, rr = rows[left_ok].astype(np.float64), rows[right_ok].astype(np.float64)
        ul, ur = left[left_ok].astype(np.float64), right[right_ok].astype(np.float64)
        al, bl = theil_sen(rl, ul)
        ar, br = theil_sen(rr, ur)
        scale = float(np.median(right - left + 1))
        if (math.isfinite(al) and math.isfinite(ar) and ar - al > 0
                and _good_fit(rl, ul, al, bl, scale, max_residual) and _good_fit(rr, ur, ar, br, scale, max_residual)):
            v0 = (bl - br) / (ar - al)
    if v0 is None or v0 > rows.max() or v0 < -np.asarray(labels).shape[0]:
        return None
    return float(v0)


@dataclass(frozen=True)
class ObjectContact:
    """One object instance standing on the ground: its class, contact row and pixel height."""

    name: str
    contact: float
    pixel_height: float


def object_contacts(labels: np.ndarray, label_set: str | LabelSet = "camvid11", *,
                    classes: Sequence[str] = ("pedestrian", "person", "car", "bicyclist", "rider"),
                    ground_classes: Sequence[str] = GROUND_CLASSES,
                    min_pixels: int = 30, min_ground_fraction: float = 0.5) -> list[ObjectContact]:
    """Connected instances of ``classes`` that stand on visible ground and are not cut by the frame.

    The contact is the boundary below the instance's lowest row; an instance counts when
    at least ``min_ground_fraction`` of its columns have ground right below their lowest
    pixel (otherwise its feet or wheels are hidden and its pixel height is too small).
    """
    from scipy import ndimage

    lab = _check_labels(labels)
    ls = _label_set(label_set)
    H, _ = lab.shape
    ground = _class_mask(lab, class_ids(ls, ground_classes))
    out: list[ObjectContact] = []
    index = {n.lower(): i for i, n in enumerate(ls.class_names)}
    for name in classes:
        if name.lower() not in index:
            continue
        comp, _n = ndimage.label(lab == index[name.lower()])
        for k, sl in enumerate(ndimage.find_objects(comp), 1):
            if sl is None:
                continue
            mask = comp[sl] == k
            top, bot = sl[0].start, sl[0].stop - 1
            if mask.sum() < min_pixels or top == 0 or bot >= H - 1:
                continue
            cols = np.flatnonzero(mask.any(axis=0))
            lowest = sl[0].start + (mask.shape[0] - 1 - np.argmax(mask[::-1, cols], axis=0))
            on_ground = ground[np.minimum(lowest + 1, H - 1), cols + sl[1].start]
            if on_ground.mean() < min_ground_fraction:
                continue
            out.append(ObjectContact(name, bot + 0.5, float(bot - top + 1)))
    return out


@dataclass
class SequenceCamera:
    """The camera of one sequence as estimated from its labels (rows in pixel-index coordinates)."""

    horizon: float | None
    horizon_source: str
    frames: int
    horizon_road: float | None = None
    horizon_road_mad: float | None = None
    frames_with_road_horizon: int = 0
    horizon_objects: dict[str, float] = field(default_factory=dict)
    objects: dict[str, int] = field(default_factory=dict)
    camera_height_estimate: float | None = None
    camera_height_estimate_iqr: tuple[float, float] | None = None
    camera_height_instances: int = 0

    def to_dict(self) -> dict[str, Any]:
        def rounded(v: Any) -> Any:
            if isinstance(v, float):
                return round(v, 3)
            if isinstance(v, dict):
                return {k: rounded(x) for k, x in v.items()}
            return v

        return {k: rounded(v) for k, v in asdict(self).items()}


def fit_sequence_camera(frames: Iterable[np.ndarray], label_set: str | LabelSet = "camvid11", *,
                        reference_heights: Mapping[str, float] = REFERENCE_HEIGHTS,
                        min_frames: int = 3, min_objects: int = 10) -> SequenceCamera:
    """Horizon of a fixed camera over a sequence of label maps, with an object-size check of its height.

    The horizon is the median of the per-frame road-width estimates when at least
    ``min_frames`` frames give one; otherwise the zero-crossing of pixel height vs contact
    row pooled over the sequence's pedestrians (at least ``min_objects``); otherwise the
    median of the road-width frames and the other classes' fits. All estimates are kept.
    ``camera_height_estimate`` is the median of ``H * (contact - v0) / pixel_height`` over
    instances of the classes in ``reference_heights`` (metres), or None.
    """
    per_frame: list[float] = []
    contacts: list[ObjectContact] = []
    n = 0
    for labels in frames:
        n += 1
        v0 = estimate_horizon(labels, label_set)
        if v0 is not None:
            per_frame.append(v0)
        contacts.extend(object_contacts(labels, label_set))
    cam = SequenceCamera(horizon=None, horizon_source="none", frames=n,
                         frames_with_road_horizon=len(per_frame))
    if per_frame:
        arr = np.asarray(per_frame)
        cam.horizon_road = float(np.median(arr))
        cam.horizon_road_mad = float(np.median(np.abs(arr - cam.horizon_road)))
    by_class: dict[str, list[ObjectContact]] = {}
    for c in contacts:
        by_class.setdefault(c.name, []).append(c)
    for name, items in by_class.items():
        cam.objects[name] = len(items)
        if len(items) >= min_objects:
            slope, intercept = theil_sen(np.array([c.contact for c in items]),
                                         np.array([c.pixel_height for c in items]))
            if math.isfinite(slope) and slope > 0:
                cam.horizon_objects[name] = -intercept / slope
    if len(per_frame) >= min_frames:
        cam.horizon, cam.horizon_source = cam.horizon_road, "road width (median over frames)"
    elif "pedestrian" in cam.horizon_objects or "person" in cam.horizon_objects:
        # People vary least in height, so their fit is the best fallback.
        who = "pedestrian" if "pedestrian" in cam.horizon_objects else "person"
        cam.horizon, cam.horizon_source = cam.horizon_objects[who], f"{who} height vs contact row"
    elif per_frame or cam.horizon_objects:
        votes = per_frame + list(cam.horizon_objects.values())
        cam.horizon = float(np.median(votes))
        cam.horizon_source = "median of " + ", ".join(
            ([f"{len(per_frame)} road-width frame(s)"] if per_frame else [])
            + [f"{k} height vs contact row" for k in cam.horizon_objects])
    if cam.horizon is not None:
        est = [reference_heights[c.name] * (c.contact - cam.horizon) / c.pixel_height
               for c in contacts if c.name in reference_heights and c.contact - cam.horizon > 4]
        if est:
            cam.camera_height_estimate = float(np.median(est))
            q1, q3 = np.percentile(est, [25, 75])
            cam.camera_height_estimate_iqr = (round(float(q1), 3), round(float(q3), 3))
            cam.camera_height_instances = len(est)
    return cam


def sequence_of(name: str, pattern: str | re.Pattern[str] = r"^[^_]+") -> str:
    """The sequence a frame belongs to: group 1 of ``pattern`` if it has one, else the whole match."""
    m = re.search(pattern, name)
    if m is None:
        raise InputError(f"{name}: does not match the sequence pattern {getattr(pattern, 'pattern', pattern)!r}")
    return m.group(1) if m.re.groups else m.group(0)


def focal_from_hfov(width: int, hfov_deg: float) -> float:
    """Focal length in pixels of a pinhole camera ``width`` pixels wide with horizontal FOV ``hfov_deg``."""
    if not 0 < hfov_deg < 180:
        raise InputError(f"horizontal field of view must be in (0, 180) degrees, got {hfov_deg}")
    return (width / 2) / math.tan(math.radians(hfov_deg) / 2)


# -- files ---------------------------------------------------------------------------------

def write_pseudo_depth(out_dir: str | Path, name: str, depth: np.ndarray, confidence: np.ndarray) -> None:
    """Write ``OUT/<name>.png`` (uint16 metres x 256, 0 = none) and ``OUT/<name>_conf.png`` (uint8 x 255).

    The confidence is written first, so a present depth file marks a finished frame.
    """
    from PIL import Image

    out = Path(out_dir)
    d = np.rint(np.clip(np.nan_to_num(depth, nan=0.0), 0, 65535 / DEPTH_SCALE) * DEPTH_SCALE).astype(np.uint16)
    c = np.rint(np.clip(np.nan_to_num(confidence, nan=0.0), 0, 1) * 255).astype(np.uint8)
    c[d == 0] = 0
    for array, path in ((c, out / f"{name}_conf.png"), (d, out / f"{name}.png")):
        with atomic_path(path, suffix=".png") as tmp:
            Image.fromarray(array).save(tmp, format="PNG")


def read_pseudo_depth(folder: str | Path, name: str) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(depth metres float32, confidence float32 or None)`` written for ``name``, or None if absent."""
    from PIL import Image

    folder = Path(folder)
    path = folder / f"{name}.png"
    if not path.is_file():
        return None
    try:
        with Image.open(path) as im:
            raw = np.asarray(im)
        depth = raw.astype(np.float32) / DEPTH_SCALE
        conf = None
        conf_path = folder / f"{name}_conf.png"
        if conf_path.is_file():
            with Image.open(conf_path) as im:
                conf = np.asarray(im).astype(np.float32) / 255.0
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: cannot read pseudo-depth ({exc}); rerun hydranet pseudo-depth "
                         "with --overwrite") from None
    if raw.ndim != 2 or (conf is not None and conf.shape != depth.shape):
        raise InputError(f"{path}: not a single-channel pseudo-depth PNG with a matching _conf.png")
    return depth, conf


def write_pseudo_depth_meta(out_dir: str | Path, meta: Mapping[str, Any]) -> Path:
    """Write ``OUT/pseudo_depth.json`` atomically; returns its path."""
    path = Path(out_dir) / META_FILE
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
    return path


def read_pseudo_depth_meta(folder: str | Path) -> dict[str, Any]:
    """The ``pseudo_depth.json`` of a folder written by ``hydranet pseudo-depth``."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise InputError(f"{path}: not found; {folder} is not a finished `hydranet pseudo-depth` output")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({exc}); rerun hydranet pseudo-depth") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("focal"), (int, float)):
        raise InputError(f"{path}: has no 'focal'; rerun hydranet pseudo-depth")
    return meta


def focal_for(meta: Mapping[str, Any], name: str) -> float:
    """The focal length (pixels at the label resolution) that ``name``'s pseudo-depth assumed."""
    seq = (meta.get("frames") or {}).get(name)
    seq_meta = (meta.get("sequences") or {}).get(seq) or {}
    return float(seq_meta.get("focal", meta["focal"]))


__all__ = [
    "DEFAULT_CAMERA_HEIGHT",
    "DEFAULT_HFOV",
    "ENVELOPE_CLASSES",
    "GROUND_CLASSES",
    "MAX_DEPTH",
    "META_FILE",
    "MOUNTED_CLASSES",
    "SKY_CLASSES",
    "STANDING_CLASSES",
    "SURFACE_HEIGHTS",
    "TALL_HEIGHTS",
    "ObjectContact",
    "SequenceCamera",
    "class_ids",
    "estimate_horizon",
    "fit_sequence_camera",
    "flat_ground_depth",
    "focal_for",
    "focal_from_hfov",
    "object_contacts",
    "read_pseudo_depth",
    "read_pseudo_depth_meta",
    "road_edges",
    "road_width_rows",
    "sequence_of",
    "theil_sen",
    "write_pseudo_depth",
    "write_pseudo_depth_meta",
]
