"""The training loop: asymmetric targets, exact resume, CPU DDP, logs and checkpoints.

Determinism: the order of samples in epoch ``e`` is a permutation drawn from
``(seed, e)``, and each sample's augmentation uses ``default_rng([seed, e, index])``,
so neither depends on worker processes or on where a run was interrupted. A
checkpoint stores model, optimiser, scheduler, task-weighting and RNG states with
the step reached; resuming replays the rest of the epoch from that step.
"""

from __future__ import annotations

import csv
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..checkpoints import save_weights
from ..data.datasets import MixedDataset, build_dataset
from ..data.sample import collate
from ..data.transforms import training_transform
from ..errors import CheckpointError, HydranetError, InputError
from ..fileio import remove_stale_temporaries
from ..labels import get_label_set
from ..evaluation.evaluate import evaluate, model_predict_fn
from ..model import HydraNet
from .checkpoint import capture_rng, load_state, restore_rng, save_state
from .config import dump_config
from .distributed import DistInfo, all_reduce_max, all_reduce_sum, barrier, convert_batchnorm
from .losses import (berhu_threshold, depth_count, depth_loss_sum, gradient_count, gradient_loss_sum,
                     ordinal_count, ordinal_depth_loss_sum, ordinal_rules, segmentation_count,
                     segmentation_loss_sum)
from .model_setup import build_model, init_weights, load_encoder_weights
from .optim import build_optimizer, build_scheduler
from .video import VideoLoss
from .weighting import build_weighting


# What a run writes into its output folder; a new run never replaces them silently.
RUN_FILES: tuple[str, ...] = ("last.pt", "best.safetensors", "last.safetensors", "val.csv", "train.csv")


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of an epoch, a function of (seed, epoch) only."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


class StepBatchSampler:
    """Yields this rank's share of each global micro-batch of one epoch, from ``start`` on.

    Items are ``(epoch, index)`` pairs so the dataset can seed each sample's augmentation.
    """

    def __init__(self, n: int, global_batch: int, seed: int, epoch: int, start: int, stop: int,
                 rank: int = 0, world: int = 1) -> None:
        self.order = epoch_order(n, seed, epoch)
        self.global_batch, self.epoch = global_batch, epoch
        self.start, self.stop, self.rank, self.world = start, stop, rank, world

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __iter__(self):
        b = self.global_batch
        for micro in range(self.start, self.stop):
            chunk = self.order[micro * b:(micro + 1) * b][self.rank::self.world]
            yield [(self.epoch, int(i)) for i in chunk]


class AugmentedDataset(Dataset):
    """A dataset seen through a seeded joint transform; unreadable samples are replaced, never fatal."""

    def __init__(self, dataset: Any, transform: Callable[..., Any], seed: int) -> None:
        self.dataset, self.transform, self.seed = dataset, transform, int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        n = len(self.dataset)
        for attempt in range(min(n, 16)):
            i = (index + attempt) % n
            try:
                sample = self.dataset[i]
                break
            except (InputError, OSError) as exc:
                warnings.warn(f"skipping sample {i}: {exc}", stacklevel=2)
        else:
            raise InputError(f"16 consecutive unreadable samples from index {index}; check the dataset files")
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        return self.transform(sample, rng)


class TrainStep(nn.Module):
    """Model + task weighting; ``forward(batch)`` returns the weighted loss and per-task losses."""

    def __init__(self, model: HydraNet, weighting: nn.Module, depth_loss: str,
                 class_weights: Tensor | None, world: int, bf16: bool,
                 ordinal: Mapping[str, Any] | None = None, video: VideoLoss | None = None,
                 gradient_scales: int = 0) -> None:
        super().__init__()
        self.gradient_scales = gradient_scales
        self.model = model
        self.video = video
        self.weighting = weighting
        self.depth_loss = depth_loss
        self.register_buffer("class_weights", class_weights if class_weights is not None else torch.empty(0))
        self.world = world
        self.bf16 = bf16
        self.ordinal = dict(ordinal) if ordinal else None
        rules = torch.empty(0, dtype=torch.bool)
        if self.ordinal:
            cfg = model.config
            names = cfg.class_names or (get_label_set(cfg.label_set).class_names if cfg.label_set else ())
            rules = ordinal_rules(names)
            if len(names) != cfg.num_classes or not rules.any():
                raise InputError("loss.ordinal needs class names such as road, sky and car in the model's "
                                 "configuration; set loss.ordinal.weight: 0 for this label set")
        self.register_buffer("ordinal_rules", rules, persistent=False)

    def target_counts(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Each task's loss normaliser for ``batch``, from its targets alone (no forward pass)."""
        cw = self.class_weights if self.class_weights.numel() else None
        counts = {"segmentation": segmentation_count(batch["segmentation"], self.model.config.num_classes,
                                                     class_weights=cw)}
        if "depth" in self.model.config.tasks:
            counts["depth"] = depth_count(batch["depth"], self.depth_loss)
            if self.ordinal:
                counts["ordinal"] = ordinal_count(batch["segmentation"], self.ordinal_rules,
                                                  self.ordinal["offsets"])
            if self.gradient_scales:
                counts["gradient"] = gradient_count(batch["depth"], self.gradient_scales)
            if self.video is not None:
                counts["view_synthesis"] = VideoLoss.count(batch)
        return counts

    def forward(self, batch: Mapping[str, Tensor],
                normalizers: Mapping[str, Tensor] | None = None) -> tuple[Tensor, dict[str, float]]:
        """``(weighted loss, per-task mean losses of this batch)``.

        ``normalizers``: per task, the count to divide this batch's loss sum by instead of its
        own (global over ranks). Gradient accumulation passes the count of the whole optimiser
        step divided by the number of micro-batches, so that micro-batches with more labelled
        or depth pixels weigh more, as in one larger batch.
        """
        dtype = self.model.segm.weight.dtype
        image = batch["image"].to(dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(image)
        losses: dict[str, Tensor] = {}
        logged: dict[str, float] = {}
        cw = self.class_weights if self.class_weights.numel() else None
        s, n = segmentation_loss_sum(out["segmentation"], batch["segmentation"], class_weights=cw)
        terms = [("segmentation", s, n)]
        if "depth" in out:
            c = None
            if self.depth_loss == "berhu":
                c = all_reduce_max(berhu_threshold(out["depth"], batch["depth"]))
            ds, dn = depth_loss_sum(out["depth"], batch["depth"], self.depth_loss, threshold=c)
            terms.append(("depth", ds, dn))
            if self.ordinal:
                os_, on = ordinal_depth_loss_sum(out["depth"], batch["segmentation"], self.ordinal_rules,
                                                 self.ordinal["offsets"], self.ordinal["margin"])
                terms.append(("ordinal", os_, on))
            if self.gradient_scales:
                gs, gn = gradient_loss_sum(out["depth"], batch["depth"], self.gradient_scales)
                terms.append(("gradient", gs, gn))
            if self.video is not None:
                vs, vn = self.video(out, batch)
                terms.append(("view_synthesis", vs, vn))
        for task, total, count in terms:
            stats = all_reduce_sum(torch.stack([count.detach().double(), total.detach().double()]))
            norm = stats[0] if normalizers is None else normalizers[task].to(stats.dtype)
            if stats[0] > 0 and norm > 0:
                # Dividing by the global count and multiplying by the world size makes DDP's
                # gradient average equal the single-process mean over the global batch.
                losses[task] = total * self.world / norm
                logged[task] = float(stats[1] / stats[0])
            else:
                losses[task] = 0.0 * total  # keeps the head in the graph, adds nothing
        present = {t: v for t, v in losses.items() if t in logged}
        loss = self.weighting(present) + sum(0.0 * v for v in losses.values())
        return loss, logged


def _groups(batches: Any, size: int):
    """Consecutive lists of ``size`` batches (the last may be shorter)."""
    group: list[Any] = []
    for batch in batches:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def _progress(enabled: bool) -> Callable[[Any], Any] | None:
    return (lambda it: tqdm(it, desc="checking images and labels", leave=False)) if enabled else None


class Trainer:
    """Train a HydraNet from a config dict (see :mod:`hydranet.training.config`)."""

    def __init__(self, cfg: dict[str, Any], dist_info: DistInfo | None = None, command: str = "",
                 log: Callable[[str], None] | None = None, overwrite: bool = False) -> None:
        self.cfg = cfg
        self.dist = dist_info or DistInfo()
        self.command = command
        self.out = Path(cfg["output"])
        self.overwrite = bool(overwrite)
        self._log = log or (lambda m: print(m, file=sys.stderr))
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg["threads"]))
        self.seed = int(cfg["seed"])
        torch.manual_seed(self.seed)
        np.random.seed(self.seed % (2 ** 32))

        mcfg = cfg["model"]
        self.model = build_model(mcfg)
        if mcfg.get("encoder_weights"):
            self.log(load_encoder_weights(self.model, mcfg["encoder_weights"]) or "")
        if mcfg.get("init"):
            self.log(init_weights(self.model, str(mcfg["init"])))
        self.model.config.training_data = self._describe_data()
        if cfg["float64"]:
            self.model.double()
        if self.dist.enabled:
            convert_batchnorm(self.model)

        label_set = mcfg.get("label_set") or self.model.config.label_set
        self.train_set = self._datasets(cfg["data"]["train"], label_set, "train")
        self.val_set = self._datasets(cfg["data"]["val"], label_set, "val") if cfg["data"]["val"] else None
        aug = cfg["augment"]
        if aug["canonical_scale"] and not self.model.config.canonical_focal:
            raise InputError("augment.canonical_scale needs model.canonical_focal (camera-aware weights)")
        self.transform = training_transform(
            crop_size=aug["crop_size"], scale=aug["scale"], flip=aug["flip"], color_jitter=aug["color_jitter"],
            weather_p=aug["weather_p"], weather_kinds=aug["weather_kinds"], resize=aug["resize"],
            weather_severity=aug["weather_severity"], scale_depth=bool(aug["scale_depth"]),
            corruptions=aug.get("corruptions"), corruption_p=float(aug.get("corruption_p") or 0.0),
            corruption_severity=aug.get("corruption_severity") or (1, 5),
            max_depth=float(self.model.config.depth_range[1]), canonical_focal=self.model.config.canonical_focal,
            canonical_scale=bool(aug["canonical_scale"]))
        self.augmented = AugmentedDataset(self.train_set, self.transform, self.seed)

        self.batch = int(cfg["batch_size"])
        if self.batch % self.dist.world_size:
            raise InputError(f"batch_size {self.batch} is not divisible by the {self.dist.world_size} processes")
        if aug["crop_size"] is None and self.batch // self.dist.world_size > 1 and not aug["resize"]:
            self.log("note: no crop_size/resize; all images in a batch must share one size")
        self.accumulate = int(cfg["accumulate"])
        self.micro_per_epoch = len(self.train_set) // self.batch
        self.steps_per_epoch = self.micro_per_epoch // self.accumulate
        if self.steps_per_epoch < 1:
            raise InputError(f"{len(self.train_set)} training samples are fewer than one step "
                             f"(batch_size {self.batch} x accumulate {self.accumulate})")
        self.total_steps = int(cfg["steps"]) if cfg["steps"] is not None else \
            int(cfg["epochs"]) * self.steps_per_epoch

        lcfg = cfg["loss"]
        tasks = [t for t in self.model.config.tasks if t in ("segmentation", "depth")]
        weights = dict(lcfg.get("weights") or {})
        ordinal = lcfg["ordinal"] if float(lcfg["ordinal"]["weight"]) > 0 and "depth" in tasks else None
        if ordinal:
            # The order of depths in a column is a third loss, weighted like the other two.
            tasks.append("ordinal")
            weights["ordinal"] = float(ordinal["weight"])
            ordinal = {"offsets": [int(k) for k in ordinal["offsets"]], "margin": float(ordinal["margin"])}
        gradient_scales = 0
        if float(lcfg["gradient"]["weight"]) > 0 and "depth" in tasks:
            # The shape of the depth (its log-gradients), weighted like the other losses.
            gradient_scales = int(lcfg["gradient"]["scales"])
            tasks.append("gradient")
            weights["gradient"] = float(lcfg["gradient"]["weight"])
        vcfg = lcfg["view_synthesis"]
        video = None
        if float(vcfg["weight"]) > 0 and "depth" in tasks:
            video = VideoLoss.from_config(self.model.config, vcfg)
            tasks.append("view_synthesis")
            weights["view_synthesis"] = float(vcfg["weight"])
            self.log(video.describe())
        elif self._has_video():
            raise InputError("data.train has a video dataset but loss.view_synthesis.weight is 0; set it "
                             "(e.g. 1.0) so the frames teach depth, or remove the video entry")
        self.weighting = build_weighting(lcfg["weighting"], tasks, weights,
                                         float(lcfg.get("dwa_temperature", 2.0)))
        if cfg["float64"]:
            self.weighting.double()
        cw = None
        if lcfg.get("class_weights") is not None:
            cw = torch.tensor([float(v) for v in lcfg["class_weights"]])
            if len(cw) != self.model.config.num_classes:
                raise InputError(f"loss.class_weights has {len(cw)} values for "
                                 f"{self.model.config.num_classes} classes")
        self.step_module = TrainStep(self.model, self.weighting, lcfg["depth"], cw,
                                     self.dist.world_size, bool(cfg["bf16"]), ordinal, video,
                                     gradient_scales)
        pose = list(video.parameters()) if video is not None else None
        self.optimizer = build_optimizer(self.model, cfg["optim"], list(self.weighting.parameters()), pose)
        self.scheduler = build_scheduler(self.optimizer, self.total_steps, cfg["optim"])
        self.runner: nn.Module = self.step_module
        if self.dist.enabled:
            self.runner = nn.parallel.DistributedDataParallel(self.step_module)

        self.step = 0
        self.epoch = 0
        self.best: float | None = None
        self.epoch_sums: dict[str, float] = {}
        self.epoch_counts: dict[str, int] = {}
        self.history: list[dict[str, Any]] = []

    # -- helpers --------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if message and self.dist.is_main:
            self._log(message)

    def _has_video(self) -> bool:
        return any(d.get("type") == "video" for d in self.cfg["data"]["train"])

    def _describe_data(self) -> str:
        parts = []
        for d in self.cfg["data"]["train"]:
            parts.append(f"{d.get('type')}:{d.get('split', '')}".rstrip(":"))
        return "hydranet train: " + ", ".join(parts)

    def _datasets(self, entries: Sequence[Mapping[str, Any]], label_set: str | None, split: str) -> Any:
        built = []
        for entry in entries:
            ds = build_dataset(entry, label_set, on_bad_label=self.cfg["data"]["on_bad_label"])
            if self.cfg["data"]["verify"] and hasattr(ds, "verify") and split == "train":
                ds.verify(_progress(self.dist.is_main), num_classes=self.model.config.num_classes,
                          images=True)
            built.append(ds)
        repeats = [int(e.get("repeat", 1)) for e in entries]
        if len(built) == 1 and repeats[0] == 1:
            return built[0]
        return MixedDataset(built, repeats)

    def _loader(self, epoch: int, start_micro: int, stop_micro: int) -> DataLoader:
        sampler = StepBatchSampler(len(self.train_set), self.batch, self.seed, epoch, start_micro, stop_micro,
                                   self.dist.rank, self.dist.world_size)
        workers = int(self.cfg["data"]["num_workers"])
        return DataLoader(self.augmented, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                          persistent_workers=False)

    def _set_train_mode(self) -> None:
        self.step_module.train()
        if self.cfg["freeze_bn"]:
            for m in self.model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()

    # -- state ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": "hydranet-train-state", "version": 1,
            "step": self.step, "epoch": self.epoch,
            "model": self.model.state_dict(),
            "weighting": self.weighting.state_dict(),
            "video": self.step_module.video.state_dict() if self.step_module.video is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": capture_rng(),
            "best": self.best,
            "epoch_sums": dict(self.epoch_sums), "epoch_counts": dict(self.epoch_counts),
            "config": dump_config(self.cfg),
            "model_config": self.model.config.to_json(),
            "world_size": self.dist.world_size,
        }

    def load(self, path: str | Path) -> None:
        state = load_state(path)
        try:
            self.model.load_state_dict(state["model"])
            self.weighting.load_state_dict(state["weighting"])
            if self.step_module.video is not None:
                if state.get("video") is None:
                    raise KeyError("the checkpoint has no pose network")
                self.step_module.video.load_state_dict(state["video"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"{path}: does not match this config's model/optimiser ({first}); "
                                  "resume with the config it was written with") from None
        restore_rng(state["rng"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.best = state.get("best")
        self.epoch_sums = dict(state.get("epoch_sums", {}))
        self.epoch_counts = dict(state.get("epoch_counts", {}))
        self.log(f"resumed from {path} at step {self.step} (epoch {self.epoch})")

    def save_checkpoint(self, name: str = "last.pt") -> Path | None:
        if not self.dist.is_main:
            return None
        return save_state(self.out / name, self.state())

    def _metadata(self, val: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"command": self.command, "config": dump_config(self.cfg), "step": self.step,
                "epoch": self.epoch, "validation": dict(val) if val else None}

    # -- validation -----------------------------------------------------------------------
    def validate(self) -> dict[str, Any] | None:
        if self.val_set is None or not self.dist.is_main:
            return None
        vcfg = self.cfg["val"]
        self.model.eval()
        try:
            res = evaluate(model_predict_fn(self.model, vcfg["resize"], bool(self.cfg["bf16"])), self.val_set,
                           self.model.config.num_classes, self.model.config.class_names,
                           protocol=vcfg["depth_protocol"] or "none",
                           max_depth=None if vcfg["depth_protocol"] else self.model.config.depth_range[1],
                           batch_size=int(vcfg["batch_size"]), max_images=vcfg["max_images"],
                           progress=True, desc=f"val epoch {self.epoch}")
        finally:
            self._set_train_mode()
        flat: dict[str, Any] = {"epoch": self.epoch, "step": self.step}
        if "segmentation" in res:
            flat.update(miou=res["segmentation"]["miou"], pixel_accuracy=res["segmentation"]["pixel_accuracy"])
        if "depth" in res:
            flat.update(abs_rel=res["depth"]["abs_rel"], rmse=res["depth"]["rmse"], delta1=res["depth"]["delta1"])
        flat["detail"] = res
        return flat

    def _step_normalizers(self, group: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
        """Per task, the optimiser step's target count (all ranks) per micro-batch."""
        per_batch = [self.step_module.target_counts(b) for b in group]
        tasks = list(per_batch[0])
        totals = all_reduce_sum(torch.stack([sum(c[t] for c in per_batch) for t in tasks]))
        return {t: totals[i] / len(group) for i, t in enumerate(tasks)}

    # -- the loop -------------------------------------------------------------------------
    def fit(self, resume: str | Path | None = None, stop_after: int | None = None) -> dict[str, Any]:
        """Train until ``total_steps`` (or ``stop_after`` more steps); returns a summary."""
        if resume is not None:
            self.load(resume)
        elif not self.overwrite:
            earlier = [n for n in RUN_FILES if (self.out / n).exists()]
            if earlier:
                raise InputError(f"{self.out / earlier[0]} exists from an earlier run; pass --resume to continue "
                                 "it, --overwrite to replace it, or choose another output folder")
        elif self.dist.is_main:
            for name in ("train.csv", "val.csv"):  # a replaced run's logs start afresh, never appended to
                (self.out / name).unlink(missing_ok=True)
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:  # temporary files of saves that a killed run never renamed
                remove_stale_temporaries(self.out / name)
            (self.out / "config.yaml").write_text(dump_config(self.cfg))
        writer = self._tensorboard()
        target = self.total_steps if stop_after is None else min(self.total_steps, self.step + int(stop_after))
        self._set_train_mode()
        start_time = time.time()
        last_val: dict[str, Any] | None = None
        self.log(f"training {self.model.config.name or 'hydranet'} ({self.model.config.encoder}, "
                 f"{self.model.config.num_classes} classes) on {len(self.train_set)} samples: "
                 f"{self.total_steps} steps of batch {self.batch}x{self.accumulate}, "
                 f"{self.steps_per_epoch} steps/epoch, {self.dist.world_size} process(es)")
        bar = tqdm(total=target, initial=self.step, desc="train", disable=not self.dist.is_main, dynamic_ncols=True)
        try:
            while self.step < target:
                self.epoch = self.step // self.steps_per_epoch
                in_epoch = self.step % self.steps_per_epoch
                stop_step = min(self.steps_per_epoch, in_epoch + (target - self.step))
                loader = self._loader(self.epoch, in_epoch * self.accumulate, stop_step * self.accumulate)
                for group in _groups(loader, self.accumulate):
                    if self.step_module.video is not None:
                        self.step_module.video.set_step(self.step)
                    normalizers = self._step_normalizers(group) if len(group) > 1 else None
                    for batch in group:
                        loss, logged = self.runner(batch, normalizers)
                        (loss / len(group)).backward()
                        for t, v in logged.items():
                            self.epoch_sums[t] = self.epoch_sums.get(t, 0.0) + v
                            self.epoch_counts[t] = self.epoch_counts.get(t, 0) + 1
                    if len(group) < self.accumulate:
                        self.optimizer.zero_grad(set_to_none=True)  # an incomplete step is not taken
                        continue
                    if self.cfg["optim"].get("grad_clip"):
                        nn.utils.clip_grad_norm_(self.step_module.parameters(), float(self.cfg["optim"]["grad_clip"]))
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scheduler.step()
                    self.step += 1
                    bar.update(1)
                    loss_value = float(loss.detach())
                    if not math.isfinite(loss_value):
                        raise HydranetError(f"loss became {loss_value} at step {self.step}; lower the "
                                            "learning rates (optim.lr_*) or enable optim.grad_clip")
                    with torch.no_grad():  # the global weighted loss (the rank-local one is scaled)
                        shown = float(self.weighting({t: torch.tensor(v, dtype=torch.float64)
                                                      for t, v in logged.items()}))
                    self._log_step(writer, shown, logged, bar)
                    every = int(self.cfg["checkpoint_every"] or 0)
                    if every and self.step % every == 0:
                        self.save_checkpoint()
                if self.step % self.steps_per_epoch == 0:
                    last_val = self._end_epoch(writer) or last_val
        except KeyboardInterrupt:
            bar.close()
            path = self.save_checkpoint()
            if path is not None:
                self.log(f"interrupted at step {self.step}: saved {path}; continue with --resume {path}")
            raise
        bar.close()
        if self.step % self.steps_per_epoch and self.step == self.total_steps:
            last_val = self._end_epoch(writer, partial=True) or last_val
        self.save_checkpoint()
        if self.dist.is_main:
            save_weights(self.model, self.out / "last.safetensors", self._metadata(last_val))
            if self.step_module.video is not None:
                self.step_module.video.save_pose(self.out / "pose.safetensors", self._metadata(None))
            if self.best is None and last_val is None:
                save_weights(self.model, self.out / "best.safetensors", self._metadata(None))
        if writer is not None:
            writer.close()
        barrier()
        summary = {"step": self.step, "epoch": self.epoch, "seconds": time.time() - start_time,
                   "best": self.best, "last_validation": last_val, "output": str(self.out)}
        return summary

    def _end_epoch(self, writer: Any, partial: bool = False) -> dict[str, Any] | None:
        means = {t: self.epoch_sums[t] / self.epoch_counts[t] for t in self.epoch_sums if self.epoch_counts.get(t)}
        self.weighting.end_epoch(means)
        self.epoch_sums, self.epoch_counts = {}, {}
        # A run that ends mid-epoch reports a fractional epoch (e.g. 1.6).
        finished_epoch = round(self.step / self.steps_per_epoch, 2) if partial else self.epoch + 1
        val = None
        every = max(int(self.cfg["val"]["every"] or 1), 1)
        if self.val_set is not None and (finished_epoch % every == 0 or self.step == self.total_steps):
            val = self.validate()
        if self.dist.is_main:
            if val is not None:
                score = val["miou"] if "miou" in val else -val.get("abs_rel", float("inf"))
                row = {k: v for k, v in val.items() if k != "detail"}
                row["epoch"] = finished_epoch
                self._csv("val.csv", row)
                self.log("val epoch {}: {}".format(finished_epoch, ", ".join(
                    f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float))))
                if writer is not None:
                    for k, v in row.items():
                        if isinstance(v, float):
                            writer.add_scalar(f"val/{k}", v, self.step)
                if self.best is None or score > self.best:
                    self.best = float(score)
                    save_weights(self.model, self.out / "best.safetensors", self._metadata(val))
            save_weights(self.model, self.out / "last.safetensors", self._metadata(val))
            self.save_checkpoint()
        barrier()
        return val

    def _log_step(self, writer: Any, loss: float, logged: Mapping[str, float], bar: Any) -> None:
        if not self.dist.is_main:
            return
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        weights = self.weighting.current_weights()
        bar.set_postfix(loss=f"{loss:.3f}", **{t[:4]: f"{v:.3f}" for t, v in logged.items()})
        every = max(int(self.cfg["log_every"] or 1), 1)
        if self.step % every and self.step != self.total_steps:
            return
        row = {"step": self.step, "epoch": self.epoch, "loss": loss, "lr_encoder": lrs[0], "lr_decoder": lrs[1]}
        extra = (("ordinal",) if self.step_module.ordinal else ()) + \
            (("gradient",) if self.step_module.gradient_scales else ()) + \
            (("view_synthesis",) if self.step_module.video is not None else ())
        for t in ("segmentation", "depth") + extra:
            row[f"loss_{t}"] = logged.get(t, float("nan"))
            row[f"weight_{t}"] = weights.get(t, float("nan"))
        if self.step_module.video is not None:
            row.update(self.step_module.video.last_stats())
        self._csv("train.csv", row)
        if writer is not None:
            for k, v in row.items():
                if k not in ("step", "epoch") and isinstance(v, float) and math.isfinite(v):
                    writer.add_scalar(f"train/{k}", v, self.step)
            if self.step_module.video is not None:
                for name, picture in self.step_module.video.pictures(self.model.config.depth_range).items():
                    writer.add_image(f"video/{name}", picture, self.step, dataformats="HWC")

    def _csv(self, name: str, row: Mapping[str, Any]) -> None:
        path = self.out / name
        new = not path.exists()
        with path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def _tensorboard(self) -> Any:
        if not (self.cfg["tensorboard"] and self.dist.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.log("note: tensorboard is not installed; logging to CSV only (pip install 'hydranet[train]')")
            return None
        return SummaryWriter(str(self.out / "tensorboard"))


__all__ = ["AugmentedDataset", "StepBatchSampler", "TrainStep", "Trainer", "epoch_order"]
