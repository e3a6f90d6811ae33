"""The self-supervised video term of training: pose network + view-synthesis loss on video samples.

A batch may mix labelled images, synthetic depth and video tuples; only the samples that
carry a ``video`` part (``batch["video"]["has_video"]``) enter this loss, each one once, so
the loss is a sum over those samples with their count as normaliser (like every other term).

Depth for the loss is the network's depth head as inference reads it: ``|output|``, resized
to the frames, and for camera-aware weights (``canonical_focal``) multiplied by
``fx / canonical_focal`` of the frames as fed (the same rule as :mod:`hydranet.inference`).
"""

from __future__ import annotations

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
from ..model.pose import POSE_NETWORKS, PoseNet, create_pose_net
from .view_synthesis import road_plane_height, stereo_motion, view_synthesis_loss

ROAD_NAMES: tuple[str, ...] = ("road",)


def _class_names(config: ModelConfig) -> list[str]:
    names = list(config.class_names or (get_label_set(config.label_set).class_names if config.label_set else ()))
    return [n.lower() for n in names]


class VideoLoss(nn.Module):
    """Pose network and monodepth2-style loss; ``forward(outputs, batch) -> (sum over video samples, count)``."""

    def __init__(self, class_names: list[str], canonical_focal: float | None = None,
                 ssim: float = 0.85, smoothness: float = 1e-3, automask: bool = True, scales: int = 2,
                 mask_classes: list[str] | None = None, camera_height: float | None = None,
                 height_weight: float = 0.1, pose_warmup: int = 0, pose_network: str = "sfmlearner") -> None:
        super().__init__()
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
                   pose_network=section["pose_network"])

    def describe(self) -> str:
        parts = [f"view synthesis: pose network {self.pose_network}, SSIM {self.ssim:g}, smoothness {self.smooth:g}, "
                 f"{'auto-masking, ' if self.automask else ''}{self.scales} scale(s)"]
        if self.mask_classes:
            parts.append(f"masked classes {', '.join(self.mask_classes)}")
        if self.camera_height:
            parts.append(f"scale from a camera {self.camera_height:g} m above the road")
        if self.pose_warmup:
            parts.append(f"first {self.pose_warmup} steps train the pose network only")
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
        available = [torch.ones(len(idx), dtype=torch.bool) for _ in sources]
        baseline = video["baseline"][idx]
        if bool((baseline != 0).any()):
            sources.append(video["right"][idx])
            motions.append(stereo_motion(baseline.float()))
            available.append(baseline != 0)
        labels = None
        if len(self.mask_ids) or self.camera_height:
            with torch.no_grad():
                logits = F.interpolate(outputs["segmentation"][idx].float(), size=size, mode="bilinear",
                                       align_corners=False)
                labels = logits.argmax(1, keepdim=True)
        keep = ~torch.isin(labels, self.mask_ids) if labels is not None and len(self.mask_ids) else None
        loss, info = view_synthesis_loss(depth, target, sources, motions, k, keep, alpha=self.ssim,
                                         automask=self.automask, smooth_weight=self.smooth, scales=self.scales,
                                         available=available)
        stats = {"photometric": float(info["photometric"].mean()), "video_mask": float(info["mask"].mean())}
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


__all__ = ["VideoLoss", "load_pose_net"]
