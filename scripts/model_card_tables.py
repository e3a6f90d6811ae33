"""Print the markdown tables of docs/MODEL_CARD.md from scripts/evaluate_default.sh's outputs.

    python scripts/model_card_tables.py [runs/model_card]
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


def drive_table(out: Path) -> None:
    drives = {}
    for tag in ("default", "no_weather"):
        path = out / f"drive1_{tag}" / "metrics.json"
        if path.is_file():
            drives[tag] = json.loads(path.read_text())["conditions"]
    print("| condition | " + " | ".join(f"{t} mIoU % | {t} abs rel | {t} delta<1.25 %" for t in drives) + " |")
    print("| --- |" + " ---: | ---: | ---: |" * len(drives))
    for c in CONDITIONS:
        cells = []
        for t, conds in drives.items():
            m = conds[c]
            cells += [pct(m["miou"]), f"{m['abs_rel']:.3f}", pct(m["delta1"])]
        print(f"| {c} | " + " | ".join(cells) + " |")
    print()
    for t, conds in drives.items():
        clear = conds["clear"]
        parts = []
        for c in ("rain", "fog", "night"):
            m = conds[c]
            parts.append(f"{c}: mIoU {100 * (m['miou'] - clear['miou']) / clear['miou']:+.1f} %, "
                         f"abs rel {100 * (m['abs_rel'] - clear['abs_rel']) / clear['abs_rel']:+.1f} %")
        print(f"{t}, relative to clear: " + "; ".join(parts))
    print()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/model_card")
    camvid_tables(out)
    drive_table(out)


if __name__ == "__main__":
    main()
