"""Label sets: class names and colour palettes of the datasets the field uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelSet:
    """Class names and an RGB colour per class; ``ignore_index`` marks unlabelled pixels."""

    name: str
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = 255

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def palette_array(self) -> np.ndarray:
        """``(num_classes, 3)`` uint8 palette."""
        return np.asarray(self.palette, dtype=np.uint8)


def voc_colormap(n: int) -> np.ndarray:
    """The PASCAL VOC colour map (bit-interleaved RGB), ``(n, 3)`` uint8."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


# The reference notebooks' KITTI colours are CamVid's, hence the class names.
KITTI6 = LabelSet(
    "kitti6",
    ("sky", "building", "road", "sidewalk", "vegetation", "car"),
    ((128, 128, 128), (128, 0, 0), (128, 64, 128), (0, 0, 192), (128, 128, 0), (64, 0, 128)),
)

_NYUD40_NAMES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)
# The reference notebooks colour NYUD class k with VOC colour k + 1.
NYUD40 = LabelSet(
    "nyud40", _NYUD40_NAMES, tuple(tuple(int(v) for v in c) for c in voc_colormap(41)[1:])
)

CAMVID11 = LabelSet(
    "camvid11",
    ("sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car",
     "pedestrian", "bicyclist"),
    ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
     (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)),
    ignore_index=11,
)

CITYSCAPES19 = LabelSet(
    "cityscapes19",
    ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
     "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
     "motorcycle", "bicycle"),
    ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
     (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
     (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
     (0, 80, 100), (0, 0, 230), (119, 11, 32)),
)

NYUD_KITTI46 = LabelSet(
    "nyud_kitti46",
    NYUD40.class_names + tuple(f"kitti {n}" for n in KITTI6.class_names),
    NYUD40.palette + KITTI6.palette,
)

LABEL_SETS: dict[str, LabelSet] = {
    s.name: s for s in (KITTI6, NYUD40, CAMVID11, CITYSCAPES19, NYUD_KITTI46)
}


def get_label_set(name: str) -> LabelSet:
    """A registered label set by name."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise KeyError(f"unknown label set {name!r}; known: {', '.join(LABEL_SETS)}") from None


def generic_label_set(num_classes: int) -> LabelSet:
    """Numbered classes with VOC colours, for custom class counts."""
    colours = voc_colormap(num_classes + 1)[1:]
    return LabelSet(
        f"custom{num_classes}",
        tuple(f"class {i}" for i in range(num_classes)),
        tuple(tuple(int(v) for v in c) for c in colours),
    )
