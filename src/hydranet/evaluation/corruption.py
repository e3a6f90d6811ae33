"""Robustness evaluation: the same set under each weather corruption and severity, and the degradation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..data.weather import WEATHER_KINDS
from ..errors import InputError


def parse_kinds(text: str | None) -> list[str]:
    if not text:
        return []
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if kinds == ["all"]:
        return list(WEATHER_KINDS)
    bad = [k for k in kinds if k not in WEATHER_KINDS]
    if bad:
        raise InputError(f"unknown corruption(s) {', '.join(bad)}; choose from {', '.join(WEATHER_KINDS)} or all")
    return kinds


def parse_severities(text: str | int | None) -> list[int]:
    """``3``, ``1,3,5`` or ``1..5``."""
    if text is None:
        return [3]
    s = str(text).strip()
    try:
        if ".." in s:
            lo, hi = (int(v) for v in s.split("..", 1))
            values = list(range(lo, hi + 1))
        else:
            values = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"severity {text!r}: use a number 1..5, a list 1,3,5 or a range 1..5") from None
    if not values or any(not 1 <= v <= 5 for v in values):
        raise InputError(f"severity {text!r}: values must lie in 1..5")
    return values


def summary_row(name: str, severity: int | None, result: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"condition": name, "severity": severity}
    seg = result.get("segmentation")
    if seg:
        row.update(miou=seg["miou"], pixel_accuracy=seg["pixel_accuracy"])
    dep = result.get("depth")
    if dep:
        row.update(abs_rel=dep["abs_rel"], rmse=dep["rmse"], delta1=dep["delta1"])
    return row


def run_corruptions(run: Callable[[str | None, int], dict[str, Any]], kinds: Sequence[str],
                    severities: Sequence[int]) -> list[dict[str, Any]]:
    """Rows for the clean set and each (kind, severity), with ``d_miou`` / ``d_abs_rel`` vs clean."""
    clean = run(None, 0)
    rows = [summary_row("clean", None, clean) | {"result": clean}]
    for kind in kinds:
        for sev in severities:
            res = run(kind, sev)
            row = summary_row(kind, sev, res)
            if "miou" in row and "miou" in rows[0]:
                row["d_miou"] = row["miou"] - rows[0]["miou"]
            if "abs_rel" in row and "abs_rel" in rows[0]:
                row["d_abs_rel"] = row["abs_rel"] - rows[0]["abs_rel"]
            row["result"] = res
            rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    cols = [c for c in ("condition", "severity", "miou", "d_miou", "pixel_accuracy", "abs_rel", "d_abs_rel",
                        "rmse", "delta1") if any(c in r for r in rows)]
    head = {"pixel_accuracy": "pix_acc"}
    lines = ["  ".join(f"{head.get(c, c):>9}" for c in cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if v is None:
                cells.append(f"{'-':>9}")
            elif isinstance(v, float):
                cells.append(f"{v:>+9.4f}" if c.startswith("d_") else f"{v:>9.4f}")
            else:
                cells.append(f"{str(v):>9}")
        lines.append("  ".join(cells))
    return "\n".join(lines)
