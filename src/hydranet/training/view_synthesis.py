"""Depth from video by view synthesis (monodepth2's recipe), with a stereo and a camera-height scale.

A target frame ``t`` and its neighbours ``s`` (t-1, t+1, and optionally the other camera of
a stereo pair) see the same static scene. With the depth of ``t`` and the motion ``T_{t->s}``
every pixel of ``t`` is back-projected, moved and projected into ``s``; sampling ``s`` there
synthesises ``t``. The photometric error between the synthesis and ``t`` (SSIM + L1) teaches
depth and motion together, without labels:

- per pixel the *minimum* error over the neighbours (a pixel hidden in one neighbour is
  usually visible in the other);
- *auto-masking*: pixels whose error is lower without any warping (the neighbour unwarped)
  are dropped: a static camera, a car moving with us, textureless areas;
- an edge-aware smoothness of the mean-normalised inverse depth;
- the loss at several image scales (the single depth map resized to each).

Conventions: camera coordinates x right, y down, z forward (OpenCV); ``T_{t->s}`` (4x4) maps
a point in frame t's camera to frame s's camera; depth is z in metres. Monocular video fixes
depth only up to a scale; a stereo pair with a known baseline (the right camera sits at
``+baseline`` along x, so ``T_{left->right}`` translates by ``-baseline``) or a known camera
height above the road (:func:`road_plane_height`) fixes it in metres.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def pixel_grid(height: int, width: int, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> Tensor:
    """Homogeneous pixel coordinates ``(3, H*W)``: rows (u, v, 1), pixel (col, row) at (col, row)."""
    v, u = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                          torch.arange(width, dtype=dtype, device=device), indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(height * width, dtype=dtype, device=device)])


def backproject(depth: Tensor, intrinsics: Tensor) -> Tensor:
    """Camera points ``(N, 3, H*W)`` of every pixel of ``depth`` ``(N, 1, H, W)`` with ``K`` ``(N, 3, 3)``."""
    n, _, h, w = depth.shape
    rays = torch.linalg.inv(intrinsics.to(depth.dtype)) @ pixel_grid(h, w, depth.dtype, depth.device)
    return rays * depth.reshape(n, 1, h * w)


def project(points: Tensor, intrinsics: Tensor, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Pixel coordinates ``(N, 2, P)`` of camera points ``(N, 3, P)`` and whether each is in front (z > 0)."""
    cam = intrinsics.to(points.dtype) @ points
    z = cam[:, 2:3]
    in_front = z[:, 0] > eps
    return cam[:, :2] / z.clamp_min(eps), in_front


def transform_points(points: Tensor, motion: Tensor) -> Tensor:
    """``R @ p + t`` for points ``(N, 3, P)`` and motions ``(N, 4, 4)``."""
    motion = motion.to(points.dtype)
    return motion[:, :3, :3] @ points + motion[:, :3, 3:]


def warp(source: Tensor, depth: Tensor, motion: Tensor, intrinsics: Tensor,
         source_intrinsics: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Frame t synthesised from ``source`` ``(N, C, H, W)``: ``(image, valid)``.

    ``depth`` ``(N, 1, H, W)`` is frame t's, ``motion`` ``T_{t->s}``; ``valid`` ``(N, 1, H, W)``
    marks pixels that land inside the source image in front of its camera.
    """
    n, _, h, w = depth.shape
    points = transform_points(backproject(depth, intrinsics), motion)
    uv, in_front = project(points, intrinsics if source_intrinsics is None else source_intrinsics)
    hs, ws = source.shape[-2:]
    gx = 2 * uv[:, 0] / max(ws - 1, 1) - 1  # align_corners=True: -1 and 1 are the edge pixel centres
    gy = 2 * uv[:, 1] / max(hs - 1, 1) - 1
    grid = torch.stack([gx, gy], dim=-1).reshape(n, h, w, 2)
    image = F.grid_sample(source.to(depth.dtype), grid, mode="bilinear", padding_mode="border",
                          align_corners=True)
    inside = (gx.abs() <= 1) & (gy.abs() <= 1) & in_front
    return image, inside.reshape(n, 1, h, w)


def ssim_error(x: Tensor, y: Tensor) -> Tensor:
    """``(1 - SSIM) / 2`` per pixel over 3x3 windows (reflection-padded), in [0, 1]."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mx, my = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sx = F.avg_pool2d(x * x, 3, 1) - mx * mx
    sy = F.avg_pool2d(y * y, 3, 1) - my * my
    sxy = F.avg_pool2d(x * y, 3, 1) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sx + sy + c2))
    return ((1 - ssim) / 2).clamp(0, 1)


def photometric_error(prediction: Tensor, target: Tensor, alpha: float = 0.85) -> Tensor:
    """monodepth2's per-pixel error ``alpha * (1 - SSIM) / 2 + (1 - alpha) * L1``, ``(N, 1, H, W)``."""
    l1 = (prediction - target).abs().mean(1, keepdim=True)
    if alpha <= 0:
        return l1
    return alpha * ssim_error(prediction, target).mean(1, keepdim=True) + (1 - alpha) * l1


def min_reprojection(errors: Sequence[Tensor], identity: Sequence[Tensor] | None = None,
                     valid: Sequence[Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Per pixel the minimum error over the sources, and the auto-mask: ``(loss, mask)``.

    ``errors``: one ``(N, 1, H, W)`` reprojection error per source. ``identity``: the errors of
    the unwarped sources; where the smallest identity error is below the smallest reprojection
    error (ties included: a static pair must teach nothing) the pixel is auto-masked
    (``mask`` False) and its loss is that identity error, as in monodepth2's minimum over
    both: it counts in the value but gives no gradient, so a motion that explains nothing
    is never cheaper than one that explains the frame. ``valid``: which sources each pixel
    may use (e.g. a stereo frame only some images have); a pixel without any has loss 0
    and mask False.
    """
    stacked = torch.cat(list(errors), dim=1)
    if valid is not None:
        inside = torch.cat(list(valid), dim=1)
        stacked = torch.where(inside, stacked, torch.full_like(stacked, float("inf")))
    loss, _ = stacked.min(dim=1, keepdim=True)
    seen = torch.isfinite(loss)
    mask = seen
    if identity is not None:
        ident, _ = torch.cat(list(identity), dim=1).min(dim=1, keepdim=True)
        mask = seen & (loss < ident)
        loss = torch.where(mask, loss, ident.detach())
    return torch.where(seen & torch.isfinite(loss), loss, torch.zeros_like(loss)), mask


def smoothness(depth: Tensor, image: Tensor) -> Tensor:
    """Edge-aware smoothness of mean-normalised inverse depth (monodepth2), per image ``(N,)``."""
    disp = 1.0 / depth.clamp_min(1e-3)
    disp = disp / disp.mean(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    dx = (disp[..., :, 1:] - disp[..., :, :-1]).abs()
    dy = (disp[..., 1:, :] - disp[..., :-1, :]).abs()
    ix = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, keepdim=True)
    iy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, keepdim=True)
    return (dx * torch.exp(-ix)).mean(dim=(1, 2, 3)) + (dy * torch.exp(-iy)).mean(dim=(1, 2, 3))


def stereo_motion(baseline: Tensor) -> Tensor:
    """``T_{left->right}`` for signed baselines ``(N,)``: the right camera sits ``baseline`` metres along +x."""
    n = baseline.shape[0]
    out = torch.eye(4, dtype=baseline.dtype, device=baseline.device).repeat(n, 1, 1)
    out[:, 0, 3] = -baseline
    return out


def resize_intrinsics(intrinsics: Tensor, scale: float) -> Tensor:
    """``K`` for an image resized by ``scale`` (pixel centres: ``(c + 0.5) * s - 0.5``)."""
    k = intrinsics.clone()
    k[:, 0, 0] = intrinsics[:, 0, 0] * scale
    k[:, 1, 1] = intrinsics[:, 1, 1] * scale
    k[:, 0, 2] = (intrinsics[:, 0, 2] + 0.5) * scale - 0.5
    k[:, 1, 2] = (intrinsics[:, 1, 2] + 0.5) * scale - 0.5
    return k


def view_synthesis_loss(depth: Tensor, target: Tensor, sources: Sequence[Tensor], motions: Sequence[Tensor],
                        intrinsics: Tensor, keep: Tensor | None = None, alpha: float = 0.85,
                        automask: bool = True, smooth_weight: float = 1e-3, scales: int = 1,
                        available: Sequence[Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """The self-supervised loss per image ``(N,)`` and what it saw.

    ``depth`` ``(N, 1, H, W)`` metres of frame t at the frames' size; ``target`` and each of
    ``sources`` ``(N, 3, H, W)`` in [0, 1]; ``motions[i]`` is ``T_{t->source i}``; ``keep``
    ``(N, 1, H, W)`` bool: pixels allowed in the loss (e.g. not sky, not a road user);
    ``available[i]`` ``(N,)`` bool: which images have source ``i`` (a stereo frame only some have).
    As in monodepth2, a pixel that leaves a source is compared with the source's border colour.
    At scale ``k`` the frames and the depth are resized by ``2**-k`` and the loss averaged
    over scales; the smoothness is divided by ``2**k`` as in monodepth2. Returns the loss and
    ``{"photometric", "mask"}``: the full-scale masked photometric error per image and the
    fraction of pixels used.
    """
    total = depth.new_zeros(depth.shape[0])
    first: dict[str, Tensor] = {}
    for k in range(max(int(scales), 1)):
        s = 0.5 ** k
        if k:
            size = (max(int(round(depth.shape[-2] * s)), 4), max(int(round(depth.shape[-1] * s)), 4))
            d = F.interpolate(depth, size=size, mode="bilinear", align_corners=False)
            t = F.interpolate(target, size=size, mode="area")
            srcs = [F.interpolate(x, size=size, mode="area") for x in sources]
            kk = resize_intrinsics(intrinsics, size[1] / depth.shape[-1])
            kp = F.interpolate(keep.float(), size=size, mode="nearest") > 0.5 if keep is not None else None
        else:
            d, t, srcs, kk, kp = depth, target, list(sources), intrinsics, keep
        errors, inside, identity = [], [], []
        for i, (src, motion) in enumerate(zip(srcs, motions)):
            # Pixels that leave the source are compared with its border colour, not dropped:
            # dropping them would reward a motion that pushes the whole frame out of view.
            synth, _ = warp(src, d, motion, kk)
            errors.append(photometric_error(synth, t, alpha))
            has = available[i].reshape(-1, 1, 1, 1) if available is not None else None
            inside.append(torch.ones_like(synth[:, :1], dtype=torch.bool) if has is None
                          else has.expand(-1, 1, *synth.shape[-2:]))
            if automask:
                ident = photometric_error(src, t, alpha)
                identity.append(ident if has is None else torch.where(has, ident, torch.full_like(ident, float("inf"))))
        loss, mask = min_reprojection(errors, identity if automask else None, inside)
        counted = torch.cat(inside, dim=1).any(dim=1, keepdim=True)
        if kp is not None:
            mask, counted = mask & kp, counted & kp
        per_image = (loss * counted).sum(dim=(1, 2, 3)) / counted.sum(dim=(1, 2, 3)).clamp_min(1)
        total = total + per_image + smooth_weight * smoothness(d, t) / (2 ** k)
        if not k:
            first = {"photometric": per_image.detach(), "mask": mask.float().mean(dim=(1, 2, 3)).detach()}
    return total / max(int(scales), 1), first


def road_plane_height(depth: Tensor, road: Tensor, intrinsics: Tensor, min_pixels: int = 50) -> Tensor:
    """The camera's height above the road per image ``(N,)``, from the depth of ``road`` pixels.

    The road's normal comes from a least-squares plane through its points (without gradient);
    the height is the median distance of the points along it, linear in the depth, so a
    loss on it moves the depth's scale. Images with fewer than ``min_pixels`` road pixels
    give NaN.
    """
    points = backproject(depth, intrinsics)  # (N, 3, P)
    mask = road.reshape(road.shape[0], -1)
    heights = []
    for i in range(points.shape[0]):
        p = points[i][:, mask[i]]
        if p.shape[1] < min_pixels:
            heights.append(depth.new_tensor(float("nan")))
            continue
        with torch.no_grad():
            q = p.T.double()
            centre = q.mean(0)
            _, _, vh = torch.linalg.svd(q - centre, full_matrices=False)
            normal = vh[-1]
            if normal[1] < 0:  # the road lies below the camera: +y (down)
                normal = -normal
        heights.append((normal.to(p.dtype) @ p).median())
    return torch.stack(heights)


def stereo_scale(depth: Tensor, left: Tensor, right: Tensor, intrinsics: Tensor, baseline: float,
                 keep: Tensor | None = None, low: float = 0.25, high: float = 4.0, steps: int = 121,
                 alpha: float = 0.85) -> tuple[float, Tensor, Tensor]:
    """The factor that makes ``depth`` metric by a stereo pair with a known ``baseline``.

    Warps ``right`` into ``left`` with ``factor * depth`` for factors spaced evenly in log
    between ``low`` and ``high`` and returns the factor of the lowest mean photometric error
    (refined by a parabola through its neighbours), the factors and their errors. One image:
    ``depth`` ``(1, 1, H, W)``, images ``(1, 3, H, W)`` in [0, 1].
    """
    factors = torch.logspace(torch.log10(torch.tensor(low)), torch.log10(torch.tensor(high)), steps,
                             dtype=depth.dtype)
    motion = stereo_motion(depth.new_tensor([float(baseline)]))
    errors = []
    with torch.no_grad():
        for f in factors:
            synth, valid = warp(right, depth * f, motion, intrinsics)
            err = photometric_error(synth, left, alpha)
            m = valid if keep is None else valid & keep
            errors.append((err * m).sum() / m.sum().clamp_min(1))
    errors_t = torch.stack(errors)
    i = int(errors_t.argmin())
    best = float(factors[i])
    if 0 < i < steps - 1:  # parabola through (log f, error) around the minimum
        x = torch.log(factors[i - 1:i + 2]).double()
        y = errors_t[i - 1:i + 2].double()
        denom = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
        a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / denom
        b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / denom
        if a > 0:
            best = float(torch.exp(-b / (2 * a)))
    return best, factors, errors_t


def angle_between_deg(a: Tensor, b: Tensor) -> float:
    """The angle in degrees between two 3-vectors (e.g. predicted and true translation)."""
    cos = torch.dot(a.double(), b.double()) / (a.double().norm() * b.double().norm()).clamp_min(1e-12)
    return float(torch.rad2deg(torch.arccos(cos.clamp(-1, 1))))


__all__ = [
    "angle_between_deg", "backproject", "min_reprojection", "photometric_error",
    "pixel_grid", "project", "resize_intrinsics", "road_plane_height", "smoothness",
    "ssim_error", "stereo_motion", "stereo_scale", "transform_points", "view_synthesis_loss", "warp",
]
