"""Heat maps of a robustness grid (corruption x severity), drawn with numpy + OpenCV text, saved by PIL.

One picture per task: segmentation (mIoU) and depth (abs rel). Rows are corruptions, columns
severities 1..5 and the mean; each cell shows its value on a colour from the ``viridis`` map
where brighter is always better (high mIoU, low abs rel), scaled from the worst value of the
grid to the clean figure. No matplotlib (not a dependency): see :mod:`hydranet.inference.render`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..inference.render import BACKGROUND, TEXT_COLOR, colormap_lut, put_text, text_size

CELL_W, CELL_H = 72, 26
TEXT_H = 13
TITLE_H = 44      # two lines: title and the scale
HEADER_H = 24
MARGIN = 10
PAD = 12


def heatmap_layout(row_labels: Sequence[str], n_cols: int) -> tuple[int, int]:
    """``(height, width)`` in pixels of :func:`heatmap` for these rows and ``n_cols`` columns."""
    label_w = max([text_size(str(t), TEXT_H)[0] for t in row_labels] + [text_size("corruption", TEXT_H)[0]]) + PAD
    return (2 * MARGIN + TITLE_H + HEADER_H + len(row_labels) * CELL_H,
            2 * MARGIN + label_w + n_cols * CELL_W)


def heatmap(values: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], title: str,
            higher_is_better: bool = True, value_range: tuple[float, float] | None = None,
            digits: int = 3) -> np.ndarray:
    """An RGB uint8 picture of ``values`` (rows x cols, NaN = not run) with labels and numbers."""
    values = np.asarray(values, np.float64)
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"values {values.shape} for {len(row_labels)} rows and {len(col_labels)} columns")
    h, w = heatmap_layout(row_labels, len(col_labels))
    canvas = np.empty((h, w, 3), np.uint8)
    canvas[:] = BACKGROUND
    finite = values[np.isfinite(values)]
    lo, hi = value_range if value_range is not None else (
        (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))
    if not hi > lo:
        hi = lo + 1e-9
    lut = colormap_lut("viridis")
    put_text(canvas, title, (MARGIN, MARGIN), TEXT_H + 2)
    worst, best = (lo, hi) if higher_is_better else (hi, lo)
    put_text(canvas, f"colour: {worst:.{digits}f} (dark) to {best:.{digits}f} (bright); brighter is better",
             (MARGIN, MARGIN + 22), TEXT_H - 1, (170, 170, 170))
    label_w = w - 2 * MARGIN - len(col_labels) * CELL_W
    top = MARGIN + TITLE_H
    put_text(canvas, "corruption", (MARGIN, top + 4), TEXT_H, (170, 170, 170))
    for j, label in enumerate(col_labels):
        tw, _ = text_size(str(label), TEXT_H)
        put_text(canvas, str(label), (MARGIN + label_w + j * CELL_W + (CELL_W - tw) // 2, top + 4), TEXT_H)
    top += HEADER_H
    for i, label in enumerate(row_labels):
        y = top + i * CELL_H
        put_text(canvas, str(label), (MARGIN, y + (CELL_H - TEXT_H) // 2 - 1), TEXT_H)
        for j in range(len(col_labels)):
            x = MARGIN + label_w + j * CELL_W
            v = values[i, j]
            if not math.isfinite(v):
                cell, text, ink = np.array(BACKGROUND), "-", TEXT_COLOR
            else:
                t = (v - lo) / (hi - lo)
                t = t if higher_is_better else 1.0 - t
                cell = lut[int(round(float(np.clip(t, 0.0, 1.0)) * 255))]
                text = f"{v:.{digits}f}"
                luminance = 0.299 * cell[0] + 0.587 * cell[1] + 0.114 * cell[2]
                ink = (20, 20, 20) if luminance > 140 else (245, 245, 245)
            canvas[y + 1:y + CELL_H - 1, x + 1:x + CELL_W - 1] = cell
            tw, _ = text_size(text, TEXT_H)
            put_text(canvas, text, (x + (CELL_W - tw) // 2, y + (CELL_H - TEXT_H) // 2 - 1), TEXT_H, ink)
    return canvas


def grid_matrix(values: Mapping[str, Mapping[int, float]],
                severities: Sequence[int] = (1, 2, 3, 4, 5)) -> tuple[list[str], np.ndarray]:
    """Rows (corruptions) and the ``len(rows) x (len(severities) + 1)`` matrix (the mean last)."""
    rows = list(values)
    m = np.full((len(rows), len(severities) + 1), np.nan)
    for i, c in enumerate(rows):
        for j, s in enumerate(severities):
            v = values[c].get(s)
            if v is not None and math.isfinite(v):
                m[i, j] = v
        present = m[i, :len(severities)][np.isfinite(m[i, :len(severities)])]
        if present.size:
            m[i, -1] = present.mean()
    return rows, m


_TASKS = {"segmentation": ("mIoU", True), "depth": ("abs rel", False)}


def write_heatmaps(summary: Mapping[str, Any], json_path: str | Path, title: str = "") -> list[Path]:
    """``NAME_segmentation.png`` / ``NAME_depth.png`` beside ``json_path`` (``NAME.json``) for
    the tasks in ``summary`` (:func:`hydranet.evaluation.corruption.summarize`)."""
    from PIL import Image

    json_path = Path(json_path)
    written: list[Path] = []
    for task, (metric, higher) in _TASKS.items():
        entry = summary.get(task)
        if not entry or not entry.get("values"):
            continue
        severities = sorted({s for v in entry["values"].values() for s in v})
        rows, m = grid_matrix(entry["values"], severities)
        clean = entry["clean"]
        finite = m[np.isfinite(m)]
        span = [float(v) for v in finite] + ([float(clean)] if clean is not None and math.isfinite(clean) else [])
        value_range = (min(span), max(span)) if span else None
        head = f"{title}: " if title else ""
        picture = heatmap(m, rows, [f"s{s}" for s in severities] + ["mean"],
                          f"{head}{task} {metric} (clean {clean:.3f})", higher_is_better=higher,
                          value_range=value_range)
        path = json_path.with_name(f"{json_path.stem}_{task}.png")
        tmp = path.with_name(f".{path.name}.part")
        Image.fromarray(picture).save(tmp, format="PNG")
        tmp.replace(path)
        written.append(path)
    return written
