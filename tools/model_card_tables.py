"""Print the markdown tables of docs/MODEL_CARD.md from tools/evaluate_default.sh's outputs.

    python tools/model_card_tables.py [runs/model_card]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CONDITIONS = ("clear", "rain", "fog", "night")


def pct(v: float) -> str:
    return f"{100 * v:.1f}"


def camvid_tables(out: Path) -> None:
    rows = []
    for tag in ("default", "no_weather", "stage1"):
        path = out / f"camvid_val_{tag}.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        clean = next(r for r in data["rows"] if r["condition"] == "clean")
        seg = clean["result"]["segmentation"]
        rows.append((tag, data, seg))
    names = rows[0][2]["class_names"]
    print("| model | mIoU | pixel acc. | " + " | ".join(names) + " |")
    print("| --- | ---: | ---: |" + " ---: |" * len(names))
    for tag, _, seg in rows:
        print(f"| {tag} | **{pct(seg['miou'])}** | {pct(seg['pixel_accuracy'])} | "
              + " | ".join(pct(v) for v in seg["iou"]) + " |")
    print()
    print("| model | clean mIoU % | rain | fog | night |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for tag, data, seg in rows:
        by = {r["condition"]: r["miou"] for r in data["rows"]}
        if len(by) < 4:
            continue
        clean = by["clean"]
        cells = [f"{pct(by[c])} ({100 * (by[c] - clean) / clean:+.0f} %)" for c in ("rain", "fog", "night")]
        print(f"| {tag} | {pct(clean)} | " + " | ".join(cells) + " |")
    print()


def _relative(conds: dict) -> str:
    clear = conds["clear"]
    parts = []
    for c in CONDITIONS[1:]:
        m = conds[c]
        parts.append(f"{c}: mIoU {100 * (m['miou'] - clear['miou']) / clear['miou']:+.1f} %, "
                     f"abs rel {100 * (m['abs_rel'] - clear['abs_rel']) / clear['abs_rel']:+.1f} %")
    return "; ".join(parts)


def _table(drives: dict[str, dict]) -> None:
    print("| condition | " + " | ".join(f"{t} mIoU % | {t} abs rel | {t} delta<1.25 %" for t in drives) + " |")
    print("| --- |" + " ---: | ---: | ---: |" * len(drives))
    for c in CONDITIONS:
        cells = []
        for conds in drives.values():
            m = conds[c]
            cells += [pct(m["miou"]), f"{m['abs_rel']:.3f}", pct(m["delta1"])]
        print(f"| {c} | " + " | ".join(cells) + " |")
    print()
    for t, conds in drives.items():
        print(f"{t}, relative to clear: " + _relative(conds))
    print()


def _drives(out: Path, tag: str) -> dict[int, dict]:
    """Per-condition metrics of every ``drive{seed}_{tag}`` folder, by seed."""
    found = {}
    for path in out.glob(f"drive*_{tag}/metrics.json"):
        seed = path.parent.name[len("drive"):-len(f"_{tag}")]
        if seed.isdigit():
            found[int(seed)] = json.loads(path.read_text())["conditions"]
    return found


def drive_tables(out: Path) -> None:
    """The validation drive (seed 1), then the mean over every drive seed both models have."""
    runs = {t: _drives(out, t) for t in ("default", "no_weather")}
    print("Drive seed 1:\n")
    _table({t: d[1] for t, d in runs.items() if 1 in d})
    seeds = sorted(set.intersection(*(set(d) for d in runs.values())))
    if len(seeds) < 2:
        return
    means = {t: {c: {k: sum(d[s][c][k] for s in seeds) / len(seeds) for k in ("miou", "abs_rel", "delta1")}
                 for c in CONDITIONS}
             for t, d in runs.items()}
    print(f"Mean over drive seeds {', '.join(map(str, seeds))}:\n")
    _table(means)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/model_card")
    camvid_tables(out)
    drive_tables(out)


if __name__ == "__main__":
    main()
