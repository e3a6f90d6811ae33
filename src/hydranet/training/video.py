"""The self-supervised video term of training: pose network + view-synthesis loss on video samples.

A batch may mix labelled images, synthetic depth and video tuples; only the samples that
carry a ``video`` part (``batch["video"]["has_video"]``) enter this loss, each one once, so
the loss is a sum over those samples with their count as normaliser (like every other term).

Depth for the loss is the network's depth head as inference reads it: ``|output|``, resized
to the frames, and for camera-aware weights (``canonical_focal``) multiplied by
``fx / canonical_focal`` of the frames as fed (the same rule as :mod:`hydranet.inference`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, InputError
from ..labels import get_label_set
from ..model.config import ModelConfig
from ..model.pose import POSE_NETWORKS, PoseNet, axis_angle_to_matrix, create_pose_net
from .view_synthesis import road_plane_height, stereo_motion, view_synthesis_loss

ROAD_NAMES: tuple[str, ...] = ("road",)
MOTION_SOURCES: tuple[str, ...] = ("network", "align")


def _class_names(config: ModelConfig) -> list[str]:
    names = list(config.class_names or (get_label_set(config.label_set).class_names if config.label_set else ()))
    return [n.lower() for n in names]


class VideoLoss(nn.Module):
    """Pose network and monodepth2-style loss; ``forward(outputs, batch) -> (sum over video samples, count)``."""

    def __init__(self, class_names: list[str], canonical_focal: float | None = None,
                 ssim: float = 0.85, smoothness: float = 1e-3, automask: bool = True, scales: int = 2,
                 mask_classes: list[str] | None = None, camera_height: float | None = None,
                 height_weight: float = 0.1, pose_warmup: int = 0, pose_network: str = "sfmlearner",
                 motion: str = "network", align_steps: int = 80) -> None:
        super().__init__()
        if motion not in MOTION_SOURCES:
            raise InputError(f"loss.view_synthesis.motion: {motion!r}; use one of {', '.join(MOTION_SOURCES)}")
        self.motion_source, self.align_steps = motion, int(align_steps)
        # Aligned motions T_{t->s} by the frames' content (so a mirrored pair is its own entry);
        # part of the state, so a resumed run uses the same motions.
        self.aligned: dict[str, Tensor] = {}
        self.pose_network = pose_network
        self.pose: PoseNet = create_pose_net(pose_network)
        self.canonical_focal = float(canonical_focal) if canonical_focal else None
        self.ssim, self.smooth, self.automask, self.scales = float(ssim), float(smoothness), bool(automask), int(scales)
        self.camera_height = float(camera_height) if camera_height else None
        self.height_weight = float(height_weight)
        self.pose_warmup = int(pose_warmup)
        names = [n.lower() for n in class_names]
        unknown = [c for c in (mask_classes or []) if c.lower() not in names]
        if unknown:
            raise InputError(f"loss.view_synthesis.mask_classes: {', '.join(unknown)} not among the model's "
                             f"classes ({', '.join(names) or 'none'})")
        self.mask_classes = [c.lower() for c in (mask_classes or [])]
        self.register_buffer("mask_ids", torch.tensor([names.index(c) for c in self.mask_classes], dtype=torch.long),
                             persistent=False)
        road = [names.index(n) for n in ROAD_NAMES if n in names]
        if self.camera_height and not road:
            raise InputError("loss.view_synthesis.camera_height needs a 'road' class in the model to find the road")
        self.road_id = road[0] if road else -1
        self.depth_frozen = self.pose_warmup > 0
        self._stats: dict[str, float] = {}
        self._preview: tuple[Tensor, Tensor] | None = None

    @classmethod
    def from_config(cls, config: ModelConfig, section: Mapping[str, Any]) -> "VideoLoss":
        return cls(_class_names(config), config.canonical_focal, ssim=section["ssim"],
                   smoothness=section["smoothness"], automask=section["automask"], scales=section["scales"],
                   mask_classes=list(section["mask_classes"] or []), camera_height=section["camera_height"],
                   height_weight=section["height_weight"], pose_warmup=section["pose_warmup"],
                   pose_network=section["pose_network"], motion=section["motion"],
                   align_steps=section["align_steps"])

    def describe(self) -> str:
        parts = [f"view synthesis: pose network {self.pose_network}, SSIM {self.ssim:g}, smoothness {self.smooth:g}, "
                 f"{'auto-masking, ' if self.automask else ''}{self.scales} scale(s)"]
        if self.mask_classes:
            parts.append(f"masked classes {', '.join(self.mask_classes)}")
        if self.camera_height:
            parts.append(f"scale from a camera {self.camera_height:g} m above the road")
        if self.pose_warmup:
            parts.append(f"first {self.pose_warmup} steps train the pose network only")
        if self.motion_source == "align":
            parts.append(f"motions by direct alignment ({self.align_steps} steps per pair), which the pose "
                         "network learns")
        return "; ".join(parts)

    @staticmethod
    def count(batch: Mapping[str, Any]) -> Tensor:
        """The normaliser: the number of video samples in ``batch``."""
        video = batch.get("video")
        return video["has_video"].sum().double() if video is not None else torch.zeros((), dtype=torch.float64)

    def set_step(self, step: int) -> None:
        self.depth_frozen = step < self.pose_warmup

    def metric_depth(self, depth: Tensor, intrinsics: Tensor, size: tuple[int, int]) -> Tensor:
        """Network depth ``(N, 1, h, w)`` as metres at the frames' ``size`` for their cameras."""
        d = depth.float()
        if tuple(d.shape[-2:]) != tuple(size):
            d = F.interpolate(d, size=size, mode="bilinear", align_corners=False)
        d = d.abs().clamp_min(1e-2)
        if self.canonical_focal:
            d = d * (intrinsics[:, 0, 0].to(d.dtype) / self.canonical_focal).reshape(-1, 1, 1, 1)
        return d

    def motion(self, target: Tensor, source: Tensor, offset: Tensor) -> Tensor:
        """``T_{t->s}``; the pose network always sees the earlier frame first (monodepth2), so an
        earlier neighbour's motion is the inverse of the later-first prediction."""
        earlier = (offset < 0).reshape(-1, 1, 1, 1)
        first = torch.where(earlier, source, target)
        second = torch.where(earlier, target, source)
        m = self.pose(first, second)
        return torch.where(earlier.reshape(-1, 1, 1), torch.linalg.inv(m), m)

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        depth_out = outputs["depth"]
        zero = 0.0 * depth_out.sum() + sum(0.0 * p.sum() for p in self.pose.parameters())
        video = batch.get("video")
        if video is None or not bool(video["has_video"].any()):
            return zero, torch.zeros((), dtype=torch.float64)
        idx = video["has_video"].nonzero()[:, 0]
        target = video["target"][idx]
        size = (target.shape[-2], target.shape[-1])
        k = video["intrinsics"][idx].float()
        depth = self.metric_depth(depth_out[idx], k, size)
        if self.depth_frozen:
            depth = depth.detach()
        neighbours = video["neighbours"][idx]
        sources = [neighbours[:, j] for j in range(neighbours.shape[1])]
        offsets = video["offsets"][idx]
        motions = [self.motion(target, s, offsets[:, j]) for j, s in enumerate(sources)]
        labels = None
        if len(self.mask_ids) or self.camera_height:
            with torch.no_grad():
                logits = F.interpolate(outputs["segmentation"][idx].float(), size=size, mode="bilinear",
                                       align_corners=False)
                labels = logits.argmax(1, keepdim=True)
        keep = ~torch.isin(labels, self.mask_ids) if labels is not None and len(self.mask_ids) else None
        pose_loss = None
        if self.motion_source == "align":
            found = [self.aligned_motions(depth.detach(), target, s, k, keep, m.detach())
                     for s, m in zip(sources, motions)]
            # The pose network learns the aligned motions; the depth learns from them.
            pose_loss = sum(motion_error(m, a) for m, a in zip(motions, found))
            motions = found
        available = [torch.ones(len(idx), dtype=torch.bool) for _ in sources]
        baseline = video["baseline"][idx]
        if bool((baseline != 0).any()):
            sources.append(video["right"][idx])
            motions.append(stereo_motion(baseline.float()))
            available.append(baseline != 0)
        loss, info = view_synthesis_loss(depth, target, sources, motions, k, keep, alpha=self.ssim,
                                         automask=self.automask, smooth_weight=self.smooth, scales=self.scales,
                                         available=available)
        stats = {"photometric": float(info["photometric"].mean()), "video_mask": float(info["mask"].mean())}
        if pose_loss is not None:
            loss = loss + pose_loss
            stats["pose_vs_aligned"] = float(pose_loss.detach().mean())
        if self.camera_height and labels is not None:
            height = road_plane_height(depth, labels == self.road_id, k)
            ok = torch.isfinite(height) & (height > 0)
            if bool(ok.any()):
                # NaN heights (too little road) are replaced before the log, so no NaN gradient flows.
                safe = torch.where(ok, height, torch.full_like(height, self.camera_height))
                loss = loss + self.height_weight * torch.log(safe / self.camera_height).abs()
                stats["camera_height"] = float(height[ok].detach().mean())
        self._stats = stats
        self._preview = (target[0].detach(), depth[0].detach())
        return loss.sum() + zero, torch.tensor(float(len(idx)), dtype=torch.float64)

    @staticmethod
    def _key(target: Tensor, source: Tensor) -> str:
        h = hashlib.blake2b(digest_size=16)
        for x in (target, source):
            h.update(str(tuple(x.shape)).encode())
            h.update(x.detach().to(torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()

    def aligned_motions(self, depth: Tensor, target: Tensor, source: Tensor, intrinsics: Tensor,
                        keep: Tensor | None, start: Tensor) -> Tensor:
        """``T_{t->s}`` ``(N, 4, 4)`` that best warps ``source`` into ``target`` with the given depth
        (direct alignment), from ``start``; each pair is aligned once, when first seen."""
        keys = [self._key(target[i], source[i]) for i in range(len(target))]
        todo = [i for i, key in enumerate(keys) if key not in self.aligned]
        if todo:
            found = align_motion(depth[todo], target[todo], source[todo], intrinsics[todo],
                                 None if keep is None else keep[todo],
                                 start[todo], steps=self.align_steps, alpha=self.ssim, scales=self.scales)
            for i, m in zip(todo, found):
                self.aligned[keys[i]] = m
        return torch.stack([self.aligned[key] for key in keys]).to(start.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        return {"aligned": {k: v.clone() for k, v in self.aligned.items()}}

    def set_extra_state(self, state: Any) -> None:
        self.aligned = dict((state or {}).get("aligned", {}))

    def last_stats(self) -> dict[str, float]:
        """The last video batch's mean photometric error, fraction of pixels used and camera height."""
        return dict(self._stats)

    def pictures(self, depth_range: tuple[float, float]) -> dict[str, np.ndarray]:
        """The last video frame and its predicted depth, coloured (uint8 HxWx3), for TensorBoard."""
        if self._preview is None:
            return {}
        from ..inference.render import colorize_depth

        frame, depth = self._preview
        image = (frame.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        return {"frame": image, "depth": colorize_depth(depth[0].numpy(), tuple(depth_range))}

    def save_pose(self, path: Path, metadata: Mapping[str, Any] | None = None) -> None:
        """The pose network as safetensors, with its name in the metadata."""
        from safetensors.torch import save_file

        meta = {"format": "hydranet-pose", "network": self.pose_network,
                "training": json.dumps(dict(metadata or {}), default=str)}
        tmp = path.with_name(path.name + ".tmp")
        save_file({k: v.contiguous() for k, v in self.pose.state_dict().items()}, str(tmp), metadata=meta)
        tmp.replace(path)


def _rotation_vector(m: Tensor) -> Tensor:
    """The rotation vector of small rotations ``(N, 4, 4)`` (first order: enough to start from)."""
    r = m[:, :3, :3]
    return 0.5 * torch.stack([r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], dim=1)


def motion_error(predicted: Tensor, target: Tensor) -> Tensor:
    """``(N,)`` L1 distance of two motions ``(N, 4, 4)``: translation in metres plus rotation vector
    in units of 0.1 rad (a turn of 0.1 rad moves a point 10 m ahead by 1 m, as far as a 1 m step)."""
    rotation = (_rotation_vector(predicted) - _rotation_vector(target)).abs().sum(dim=1) / 0.1
    return (predicted[:, :3, 3] - target[:, :3, 3]).abs().sum(dim=1) + rotation


def align_motion(depth: Tensor, target: Tensor, source: Tensor, intrinsics: Tensor, keep: Tensor | None,
                 start: Tensor, steps: int = 80, lr: float = 0.02, alpha: float = 0.85, scales: int = 2,
                 speeds: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)) -> Tensor:
    """Direct alignment: the motion ``T_{t->s}`` ``(N, 4, 4)`` that minimises the photometric error of
    warping ``source`` into ``target`` with a fixed ``depth``, by Adam from ``start``.

    The speed per frame is unknown (a 30 fps dash-cam moves 0.3-1 m, KITTI at 10 fps 1-2 m, a
    neighbour two frames away twice that), so the start's translation is first scaled by each of
    ``speeds`` and the best is kept. The rotation is optimised in units of 0.1 rad, so one step
    of ``lr`` turns by at most ``0.1 * lr`` rad while the translation moves by ``lr`` metres: the
    two then settle at the same pace. No auto-masking: every kept pixel counts.
    """
    depth, target, source, intrinsics = depth.detach(), target.detach(), source.detach(), intrinsics.float()

    def error(m: Tensor) -> Tensor:
        return view_synthesis_loss(depth, target, [source], [m], intrinsics, keep, alpha=alpha, automask=False,
                                   smooth_weight=0.0, scales=scales)[0]

    start = start.float()
    with torch.no_grad():
        tried = []
        for s in speeds:
            m = start.clone()
            m[:, :3, 3] *= s
            tried.append((error(m), m))
        errors = torch.stack([e for e, _ in tried])  # (speeds, N)
        best = errors.argmin(dim=0)
        start = torch.stack([tried[int(b)][1][i] for i, b in enumerate(best)])
    with torch.enable_grad():
        v = torch.cat([_rotation_vector(start) / 0.1, start[:, :3, 3]], dim=1)
        v = v.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([v], lr=lr)
        for _ in range(int(steps)):
            opt.zero_grad()
            error(axis_angle_to_matrix(0.1 * v[:, :3], v[:, 3:])).sum().backward()
            opt.step()
    with torch.no_grad():
        return axis_angle_to_matrix(0.1 * v[:, :3], v[:, 3:])


def load_pose_net(path: str | Path) -> PoseNet:
    """A pose network written by training (``OUTPUT/pose.safetensors``), in eval mode."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable pose network ({exc})") from None
    if meta.get("format") != "hydranet-pose" or meta.get("network") not in POSE_NETWORKS:
        raise CheckpointError(f"{path}: not a hydranet pose network (written by hydranet train as pose.safetensors)")
    net = create_pose_net(meta["network"])
    net.load_state_dict(state)
    return net.eval()


__all__ = ["MOTION_SOURCES", "VideoLoss", "align_motion", "load_pose_net", "motion_error"]
