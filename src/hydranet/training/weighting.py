"""Combining task losses: fixed weights, learned uncertainty (Kendall et al. 2018), DWA (Liu et al. 2019).

Every weighting takes the dict of task losses present in the batch (absent tasks are
left out) and returns the total; its state (learned parameters, loss history) is
saved in training checkpoints so resuming is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

REGRESSION_TASKS = ("depth", "normals")


class FixedWeighting(nn.Module):
    """``sum_t w_t L_t``."""

    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float] | None = None) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.weights = {t: float((weights or {}).get(t, 1.0)) for t in self.tasks}

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        return sum((self.weights[t] * losses[t] for t in self.tasks if t in losses), torch.zeros(()))

    def current_weights(self) -> dict[str, float]:
        return dict(self.weights)

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        pass


class UncertaintyWeighting(nn.Module):
    """Homoscedastic uncertainty: ``exp(-s) L + s/2`` (classification), ``exp(-s) L / 2 + s/2``
    (regression), with a learned ``s_t = log sigma_t^2`` per task."""

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        total = 0.0 * self.log_vars.sum()  # keeps every s_t in the graph (DDP)
        for i, t in enumerate(self.tasks):
            if t in losses:
                s = self.log_vars[i]
                scale = 0.5 if t in REGRESSION_TASKS else 1.0
                total = total + scale * torch.exp(-s) * losses[t] + 0.5 * s
        return total

    def current_weights(self) -> dict[str, float]:
        return {t: float(torch.exp(-s)) * (0.5 if t in REGRESSION_TASKS else 1.0)
                for t, s in zip(self.tasks, self.log_vars.detach())}

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        pass


class DWAWeighting(nn.Module):
    """Dynamic weight averaging: ``w_t = K exp(r_t / T) / sum exp(r / T)``, ``r_t`` the ratio of
    task t's mean loss in the last two epochs; equal weights for the first two epochs."""

    def __init__(self, tasks: Sequence[str], temperature: float = 2.0) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.temperature = float(temperature)
        self.register_buffer("history", torch.full((2, len(self.tasks)), float("nan"), dtype=torch.float64))

    def current_weights(self) -> dict[str, float]:
        prev, last = self.history[0], self.history[1]
        if torch.isnan(prev).any() or torch.isnan(last).any():
            return {t: 1.0 for t in self.tasks}
        r = [float(last[i] / max(float(prev[i]), 1e-12)) for i in range(len(self.tasks))]
        e = [math.exp(v / self.temperature) for v in r]
        k = len(self.tasks)
        return {t: k * v / sum(e) for t, v in zip(self.tasks, e)}

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        w = self.current_weights()
        return sum((w[t] * losses[t] for t in self.tasks if t in losses), torch.zeros(()))

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        """Record this epoch's mean loss per task (a task absent all epoch keeps its last value)."""
        new = self.history[1].clone()
        for i, t in enumerate(self.tasks):
            if t in epoch_losses and math.isfinite(epoch_losses[t]):
                new[i] = float(epoch_losses[t])
        self.history[0] = self.history[1]
        self.history[1] = new


WEIGHTINGS = ("fixed", "uncertainty", "dwa")


def build_weighting(kind: str, tasks: Sequence[str], weights: Mapping[str, float] | None = None,
                    temperature: float = 2.0) -> nn.Module:
    if kind == "fixed":
        return FixedWeighting(tasks, weights)
    if kind == "uncertainty":
        return UncertaintyWeighting(tasks)
    if kind == "dwa":
        return DWAWeighting(tasks, temperature)
    raise ValueError(f"unknown task weighting {kind!r}; choose from {', '.join(WEIGHTINGS)}")
