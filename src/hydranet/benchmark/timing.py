"""Latency measurement that is fair to every engine on a shared, noisy machine.

Engines are timed in interleaved rounds (A A A, B B B, C C C, then again A, B, C ...), so
load from other processes falls on all of them alike and ratios measured within one run
stay meaningful. Each engine's number of runs is capped by a time budget, so the slow
baseline does not take minutes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Timing:
    """Latencies of one engine on one input, in milliseconds."""

    times_ms: list[float] = field(default_factory=list)
    warmup_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.times_ms)) if self.times_ms else float("nan")

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.times_ms, 90)) if self.times_ms else float("nan")


def timed(fn: Callable[[np.ndarray], object], x: np.ndarray) -> float:
    """Milliseconds for one call."""
    start = time.perf_counter()
    fn(x)
    return 1000.0 * (time.perf_counter() - start)


def plan_runs(estimate_ms: float, runs: int, min_runs: int, max_seconds: float) -> int:
    """How many timed runs fit in ``max_seconds`` (never fewer than ``min_runs``, nor more than ``runs``)."""
    fit = int(1000.0 * max_seconds / max(estimate_ms, 1e-3))
    return max(min(min_runs, runs), min(runs, fit))


def measure_interleaved(engines: Sequence[Callable[[np.ndarray], object]], x: np.ndarray, runs: int = 30,
                        warmup: int = 5, min_runs: int = 5, max_seconds: float = 15.0, rounds: int = 5,
                        warmup_seconds: float = 3.0,
                        progress: Callable[[int], None] | None = None) -> list[Timing]:
    """Time each engine on ``x``: warm-up, then ``rounds`` interleaved rounds of timed calls.

    Warm-up stops after ``warmup`` calls or ``warmup_seconds`` (at least one call: it
    compiles and allocates). ``progress(n)`` is called after each timed call.
    """
    timings = [Timing() for _ in engines]
    for engine, timing in zip(engines, timings):
        spent = 0.0
        while len(timing.warmup_ms) < max(1, warmup) and (not timing.warmup_ms or spent < 1000 * warmup_seconds):
            ms = timed(engine, x)
            timing.warmup_ms.append(ms)
            spent += ms
    planned = [plan_runs(min(t.warmup_ms[-2:]), runs, min_runs, max_seconds) for t in timings]
    rounds = max(1, min(rounds, min(planned)))
    for r in range(rounds):
        for engine, timing, n in zip(engines, timings, planned):
            share = math.ceil(n * (r + 1) / rounds) - math.ceil(n * r / rounds)
            for _ in range(share):
                timing.times_ms.append(timed(engine, x))
                if progress:
                    progress(1)
    return timings
