"""Turn the JSON of `hydranet bench --json FILE` into the README's compact tables.

    python benchmarks/readme_table.py bench.json [more.json ...]

One table per batch size: a row per engine, a column per input size, each cell
``median ms / frames per second / speedup over the reference baseline`` of that run. With
several files (repeated runs), each cell shows the median over the runs of each figure.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(paths: list[str]) -> int:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    cells: dict[tuple[str, int, str], list[dict]] = {}
    labels: dict[str, tuple[str, str]] = {}
    sizes: list[str] = []
    batches: list[int] = []
    for run in runs:
        for r in run["rows"]:
            size = f"{r['height']}x{r['width']}"
            cells.setdefault((r["engine"], r["batch"], size), []).append(r)
            labels.setdefault(r["engine"], (r["label"], r["precision"]))
            if size not in sizes:
                sizes.append(size)
            if r["batch"] not in batches:
                batches.append(r["batch"])
    for batch in batches:
        print(f"\nbatch {batch} (median ms / frames per second / speedup over the baseline):\n")
        print("| engine | precision | " + " | ".join(sizes) + " |")
        print("|---|---|" + "---:|" * len(sizes))
        for engine, (label, precision) in labels.items():
            parts = []
            for size in sizes:
                rows = cells.get((engine, batch, size))
                if not rows:
                    parts.append("-")
                    continue
                ms = statistics.median(r["median_ms"] for r in rows)
                fps = statistics.median(r["fps"] for r in rows)
                speed = statistics.median(r["speedup"] for r in rows if r["speedup"] is not None)
                parts.append(f"{ms:.1f} / {fps:.1f} / {speed:.1f}x")
            print(f"| {label} | {precision} | " + " | ".join(parts) + " |")
    for run in runs:
        for v in run.get("video", []):
            print(f"\nvideo ({v['engine']}, {v['height']}x{v['width']}, {v['frames']} frames, saving {v['save']}): "
                  f"end to end {v['e2e_fps']:.1f} frames/s, model only {v['model_fps']:.1f} frames/s, "
                  f"ratio {100 * v['ratio']:.0f}%")
        load = run.get("load_before"), run.get("load_after")
        if all(load):
            print(f"load average (1 min) before {load[0][0]:.2f}, after {load[1][0]:.2f}; "
                  f"run started {run.get('started')}, took {run.get('seconds')} s")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
