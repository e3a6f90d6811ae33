"""How often a model's depth breaks the column orders its labels imply (training/losses.ordinal_rules).

On labelled frames with no depth (CamVid), this measures the depth where pseudo-depth says
nothing: of two pixels 8 rows apart in a column whose classes fix their order (ground
above ground, sky above anything, ground or building above a road user), how often the
upper one is predicted nearer. Used to check stage 11 of the default (docs/MODEL_CARD.md).

    python tools/depth_order.py --weights default --root ../shared/data/camvid --split val
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import torch

import hydranet
from hydranet.data.datasets.camvid import CamVid
from hydranet.training.losses import ordinal_rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="default")
    parser.add_argument("--root", default="../shared/data/camvid")
    parser.add_argument("--split", default="val")
    parser.add_argument("--offset", type=int, default=8, help="rows between the two pixels of a pair")
    args = parser.parse_args(argv)
    predictor = hydranet.Predictor(args.weights, backend="torch")
    names = predictor.class_names
    rules = ordinal_rules(names)
    data = CamVid(args.root, split=args.split)
    k = args.offset
    broken, pairs = Counter(), Counter()
    for i in range(len(data)):
        sample = data[i]
        depth = predictor.predict(sample["image"]).depth
        logd = torch.from_numpy(np.log(np.maximum(depth, 1e-3)))
        lab = torch.from_numpy(np.asarray(sample["segmentation"]).astype(np.int64))
        known = lab < len(names)
        lab = lab.clamp(0, len(names) - 1)
        pair = rules[lab[k:], lab[:-k]] & known[k:] & known[:-k]
        wrong = pair & (logd[:-k] < logd[k:])
        key = (lab[k:] * len(names) + lab[:-k]).numpy()
        n = len(names) ** 2
        counts = np.bincount(key[pair.numpy()], minlength=n)
        wrongs = np.bincount(key[wrong.numpy()], minlength=n)
        for index in np.flatnonzero(counts):
            b, a = divmod(int(index), len(names))
            pairs[(b, a)] += int(counts[index])
            broken[(b, a)] += int(wrongs[index])
    total_pairs, total_broken = sum(pairs.values()), sum(broken.values())
    print(f"{args.weights} on {args.root} {args.split}, offset {k} rows: "
          f"{total_broken / max(total_pairs, 1):.1%} of {total_pairs} ordered pairs broken")
    for (b, a), n in pairs.most_common(8):
        print(f"  {names[a]:>10} above {names[b]:<10} {broken[(b, a)] / n:6.1%} of {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
