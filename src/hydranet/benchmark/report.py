"""The benchmark's table, its check of the speed goals, and its JSON record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from .suite import BASELINE, Row
from .video import VideoResult

# Speed goals of issue 4 (checked by the benchmark, never by tests).
GOAL_SPEEDUP = 20.0          # fastest engine vs the reference baseline, 192x640 batch 1
GOAL_INT8_FPS = {(192, 640): 100.0, (384, 1280): 25.0}
GOAL_VIDEO_RATIO = 0.70      # end to end / model-only, same backend


def format_table(rows: Sequence[Row]) -> str:
    """Markdown table, grouped by size then batch, fastest last within a cell's baseline order."""
    head = ("| engine | precision | size | batch | median ms | p90 ms | frames/s | vs baseline | runs |\n"
            "|---|---|---|---|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        speed = f"{r.speedup:.1f}x" if r.speedup is not None else "-"
        lines.append(f"| {r.label} | {r.precision} | {r.height}x{r.width} | {r.batch} | {r.median_ms:.1f} | "
                     f"{r.p90_ms:.1f} | {r.fps:.1f} | {speed} | {r.runs} |")
    return "\n".join(lines)


def format_video(results: Sequence[VideoResult]) -> str:
    lines = ["| engine | clip | saved | end-to-end frames/s | model-only frames/s | ratio |",
             "|---|---|---|---:|---:|---:|"]
    for v in results:
        lines.append(f"| {v.engine} | {v.height}x{v.width}, {v.frames} frames | {v.save} | {v.e2e_fps:.1f} | "
                     f"{v.model_fps:.1f} | {100 * v.ratio:.0f}% |")
    return "\n".join(lines)


def check_goals(rows: Sequence[Row], videos: Sequence[VideoResult]) -> list[dict]:
    """Each goal that this run measured: what it asks, what was measured, met or not."""
    goals = []
    cell = [r for r in rows if (r.height, r.width, r.batch) == (192, 640, 1)]
    base = next((r for r in cell if r.engine == BASELINE), None)
    others = [r for r in cell if r.engine != BASELINE]
    if base and others:
        best = max(others, key=lambda r: r.speedup or 0)
        goals.append({"goal": f"fastest >= {GOAL_SPEEDUP:g}x the reference baseline, 192x640 batch 1",
                      "measured": f"{best.engine} {best.speedup:.1f}x ({best.median_ms:.1f} vs "
                                  f"{base.median_ms:.1f} ms)",
                      "met": bool(best.speedup and best.speedup >= GOAL_SPEEDUP)})
    for (h, w), fps in GOAL_INT8_FPS.items():
        int8 = [r for r in rows if r.precision == "int8" and (r.height, r.width) == (h, w)]
        if int8:
            best = max(int8, key=lambda r: r.fps)
            goals.append({"goal": f"INT8 >= {fps:g} frames/s at {h}x{w}",
                          "measured": f"{best.engine} batch {best.batch}: {best.fps:.1f} frames/s",
                          "met": best.fps >= fps})
    for v in videos:
        goals.append({"goal": f"end-to-end video >= {100 * GOAL_VIDEO_RATIO:.0f}% of model-only ({v.engine})",
                      "measured": f"{v.e2e_fps:.1f} / {v.model_fps:.1f} frames/s = {100 * v.ratio:.0f}%",
                      "met": v.ratio >= GOAL_VIDEO_RATIO})
    return goals


def format_goals(goals: Sequence[dict]) -> str:
    return "\n".join(f"  [{'met' if g['met'] else 'NOT met'}] {g['goal']}: {g['measured']}" for g in goals)


def to_json(rows: Sequence[Row], videos: Sequence[VideoResult], goals: Sequence[dict], **context) -> dict:
    """Everything the run measured, plus its context (machine, load, versions, settings)."""
    return {
        **context,
        "rows": [asdict(r) for r in rows],
        "video": [dict(asdict(v), ratio=v.ratio) for v in videos],
        "goals": list(goals),
    }
