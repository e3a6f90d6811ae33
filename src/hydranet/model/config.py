"""Model configuration: what a network is and how its outputs are read."""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

TASKS: tuple[str, ...] = ("segmentation", "depth", "normals")
ENCODERS: tuple[str, ...] = ("mobilenetv2", "efficientnet_lite0")
# Bounds that keep a damaged weights file from building a network of many gigabytes.
MAX_DECODER_CHANNELS = 1024
MAX_CLASSES = 1024


def _whole(low: int, high: int) -> Any:
    return lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and low <= v <= high


def _text_list(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and all(isinstance(n, str) for n in v)


# Fields whose check is a type (and a range): the field's name, what it must be, and the test.
# The others (tasks, mean, std, depth_range, palette, canonical_focal) have their own lines below.
_TYPED_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("decoder_channels", f"a whole number from 1 to {MAX_DECODER_CHANNELS}", _whole(1, MAX_DECODER_CHANNELS)),
    ("encoder", f"one of {', '.join(ENCODERS)}", lambda v: isinstance(v, str)),
    ("label_set", "a label-set name or null", lambda v: v is None or isinstance(v, str)),
    ("class_names", "a list of class names or null", lambda v: v is None or _text_list(v)),
    ("palette", "a list of [r, g, b] colours of 0-255 or null", lambda v: v is None or isinstance(v, (list, tuple))),
    ("training_data", "text", lambda v: isinstance(v, str)),
    ("name", "text", lambda v: isinstance(v, str)),
    ("extra", "a JSON object", lambda v: isinstance(v, dict)),
)


def _three_floats(values: Any, name: str) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three numbers, got {values!r}") from None
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be three finite numbers, got {values!r}")
    return out  # type: ignore[return-value]


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model and interpret its outputs.

    Stored as JSON in the metadata of the project's safetensors weights.
    """

    num_classes: int
    tasks: tuple[str, ...] = ("segmentation", "depth")
    encoder: str = "mobilenetv2"
    decoder_channels: int = 256
    label_set: str | None = None
    class_names: list[str] | None = None
    palette: list[list[int]] | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    depth_range: tuple[float, float] = (0.0, 80.0)
    training_data: str = ""
    name: str = ""
    # Camera-aware depth: the focal length (pixels, at the network input) the depth head is
    # metric for. Inference resizes an image so its focal length becomes this one and corrects
    # the depth for what rounding leaves. None (the paper's checkpoints): native-size input.
    canonical_focal: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise ValueError(f"num_classes must be a whole number, got {self.num_classes!r}")
        for name, expected, ok in _TYPED_FIELDS:
            value = getattr(self, name)
            if not ok(value):
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                raise ValueError(f"{name} must be {expected}, got {shown}")
        if not isinstance(self.tasks, (list, tuple)) or not all(isinstance(t, str) for t in self.tasks):
            raise ValueError(f"tasks must be a list of task names, got {self.tasks!r}")
        self.tasks = tuple(self.tasks)
        self.mean = _three_floats(self.mean, "mean")  # type: ignore[assignment]
        self.std = _three_floats(self.std, "std")  # type: ignore[assignment]
        if not all(v > 0 for v in self.std):
            raise ValueError(f"std must be positive, got {list(self.std)}")
        try:
            rng = tuple(float(v) for v in self.depth_range)
        except (TypeError, ValueError):
            rng = ()  # not numbers: the line below names the value as given
        if len(rng) != 2 or not all(math.isfinite(v) for v in rng) or not 0 <= rng[0] < rng[1]:
            shown = list(rng) if rng else self.depth_range
            raise ValueError(f"depth_range must be [low, high] metres with 0 <= low < high, got {shown!r}")
        self.depth_range = rng  # type: ignore[assignment]
        if self.palette is not None:
            ok = all(isinstance(c, (list, tuple)) and len(c) == 3
                     and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in c)
                     for c in self.palette)
            if not ok:
                raise ValueError("palette must be a list of [r, g, b] colours of 0-255")
        if self.canonical_focal is not None:
            focal = self.canonical_focal
            if isinstance(focal, bool) or not isinstance(focal, numbers.Real) or not 1.0 <= focal <= 1e5:
                raise ValueError(f"canonical_focal must be a focal length in pixels (1 to 100000) or null, "
                                 f"got {focal!r}")
            self.canonical_focal = float(focal)
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
        if "segmentation" not in self.tasks:
            raise ValueError("every HydraNet has a segmentation head")
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; choose from {list(ENCODERS)}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {self.num_classes}")
        if self.num_classes > MAX_CLASSES:
            raise ValueError(f"num_classes must be at most {MAX_CLASSES}, got {self.num_classes}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"the configuration must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
