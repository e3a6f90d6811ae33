"""``hydranet pseudo-label``: a teacher's hard labels and confidences for images without labels.

For every image under --images, writes OUT/<relative path>.png (8-bit class ids at
the image's resolution) and OUT/<relative path>_conf.png (the teacher's softmax
probability of that class, x255). Training uses them where a dataset entry has
`pseudo_labels: OUT` and the real label is missing (pixels below
`pseudo_threshold` confidence are ignored) — the knowledge distillation of
Nekrasov et al. Existing outputs are kept, so an interrupted run just continues.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from ..fileio import atomic_path

EPILOG = """\
examples:
  hydranet pseudo-label --teacher kitti6 --images KITTI/raw --out pseudo/kitti
  hydranet pseudo-label --teacher teacher.safetensors --images frames/ --out pseudo/ --label-set kitti6
then in the training config:
  - {type: kitti_depth, root: KITTI, pseudo_labels: pseudo/kitti, pseudo_threshold: 0.5}
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pseudo-label", help="write a teacher's labels + confidences for unlabelled images",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="teacher weights (file or registered name)")
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--label-set", default=None,
                        help="write labels in this label set, mapping the teacher's classes by name")
    parser.add_argument("--size", default=None, metavar="HxW",
                        help="network input size: HxW, native, or nothing for the weights' own choice")
    parser.add_argument("--overwrite", action="store_true", help="recompute existing outputs")
    parser.set_defaults(func=run)


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def teacher_outputs(predictor, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, confidence) at the image's resolution, through the one inference pipeline."""
    pred = predictor.predict(image, confidence=True)
    return pred.labels, pred.extra["confidence"]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..checkpoints import load_model
    from ..inference.predictor import Predictor
    from ..data.datasets.base import IMAGE_SUFFIXES, read_rgb
    from ..data.datasets.mix import remap_by_name
    from ..errors import InputError
    from ..labels import LabelSet, get_label_set
    from .options import parse_inference_size

    images_dir = Path(args.images)
    if not images_dir.is_dir():
        raise InputError(f"{images_dir}: image folder not found")
    out = Path(args.out)
    model = load_model(args.teacher)
    cfg = model.config
    predictor = Predictor(model, size=parse_inference_size(args.size))
    lut = None
    if args.label_set:
        teacher_set = LabelSet(cfg.label_set or "teacher", tuple(cfg.class_names or ()),
                               tuple(tuple(c) for c in (cfg.palette or [])))
        try:
            target = get_label_set(args.label_set)
        except KeyError as exc:
            raise InputError(str(exc).strip("'\"")) from None
        lut = np.full(max(cfg.num_classes, 1), 255, np.uint8)
        for src, dst in remap_by_name(teacher_set, target).items():
            lut[src] = dst
    elif cfg.num_classes > 255:
        raise InputError(f"{args.teacher}: {cfg.num_classes} classes do not fit 8-bit label PNGs")
    files = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not p.name.endswith("_conf.png"))
    if not files:
        raise InputError(f"{images_dir}: no images found")
    written = skipped = failed = 0
    for path in tqdm(files, desc="pseudo-label"):
        rel = path.relative_to(images_dir).with_suffix("")
        label_path = out / f"{rel}.png"
        conf_path = out / f"{rel}_conf.png"
        if not args.overwrite and label_path.is_file() and conf_path.is_file():
            skipped += 1
            continue
        try:
            image = read_rgb(path)
        except InputError as exc:
            warnings.warn(str(exc), stacklevel=1)
            failed += 1
            continue
        labels, conf = teacher_outputs(predictor, image)
        labels = lut[labels] if lut is not None else labels.astype(np.uint8)
        _save_png(np.rint(conf * 255).astype(np.uint8), conf_path)
        _save_png(labels.astype(np.uint8), label_path)  # last: its presence marks a finished image
        written += 1
    print(f"pseudo-labels: {written} written, {skipped} already present, {failed} unreadable -> {out}")
    return 0 if written + skipped else 2
