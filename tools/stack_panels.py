"""Stack panels into one picture, each scaled to the width of the first (white gaps between).

    python tools/stack_panels.py OUT.png PANEL.png [PANEL.png ...]
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image


def main(out: str, paths: list[str]) -> int:
    panels = [Image.open(p).convert("RGB") for p in paths]
    width = min(p.width for p in panels)
    rows = []
    for p in panels:
        scaled = p.resize((width, round(p.height * width / p.width)), Image.LANCZOS)
        rows += [np.asarray(scaled), np.full((6, width, 3), 255, np.uint8)]
    Image.fromarray(np.concatenate(rows[:-1])).save(out, optimize=True)
    print(f"{out}: {len(panels)} panels, {width} px wide")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
