"""The benchmark's tables and its JSON record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from .suite import Row
from .video import VideoResult


def format_table(rows: Sequence[Row]) -> str:
    """Markdown table, grouped by size then batch, fastest last within a cell's baseline order."""
    head = ("| engine | precision | size | batch | median ms | p90 ms | frames/s | vs baseline | vs plain INT8 | runs |\n"
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        speed = f"{r.speedup:.1f}x" if r.speedup is not None else "-"
        plain = f"{r.vs_plain_int8:.2f}x" if r.vs_plain_int8 is not None else "-"
        lines.append(f"| {r.label} | {r.precision} | {r.height}x{r.width} | {r.batch} | {r.median_ms:.1f} | "
                     f"{r.p90_ms:.1f} | {r.fps:.1f} | {speed} | {plain} | {r.runs} |")
    return "\n".join(lines)


def format_video(results: Sequence[VideoResult]) -> str:
    lines = ["| engine | clip | saved | end-to-end frames/s | model-only frames/s | ratio |",
             "|---|---|---|---:|---:|---:|"]
    for v in results:
        lines.append(f"| {v.engine} | {v.height}x{v.width}, {v.frames} frames | {v.save} | {v.e2e_fps:.1f} | "
                     f"{v.model_fps:.1f} | {100 * v.ratio:.0f}% |")
    return "\n".join(lines)


def to_json(rows: Sequence[Row], videos: Sequence[VideoResult], **context) -> dict:
    """Everything the run measured, plus its context (machine, load, versions, settings)."""
    return {
        **context,
        "rows": [asdict(r) for r in rows],
        "video": [dict(asdict(v), ratio=v.ratio) for v in videos],
    }
