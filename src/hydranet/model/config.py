"""Model configuration: what a network is and how its outputs are read."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

TASKS: tuple[str, ...] = ("segmentation", "depth", "normals")
ENCODERS: tuple[str, ...] = ("mobilenetv2", "efficientnet_lite0")


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
        self.tasks = tuple(self.tasks)
        self.mean = tuple(float(v) for v in self.mean)  # type: ignore[assignment]
        self.std = tuple(float(v) for v in self.std)  # type: ignore[assignment]
        self.depth_range = tuple(float(v) for v in self.depth_range)  # type: ignore[assignment]
        if self.canonical_focal is not None:
            self.canonical_focal = float(self.canonical_focal)
            if not 1.0 <= self.canonical_focal <= 1e5:
                raise ValueError(f"canonical_focal must be a focal length in pixels, got {self.canonical_focal}")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
        if "segmentation" not in self.tasks:
            raise ValueError("every HydraNet has a segmentation head")
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; choose from {list(ENCODERS)}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {self.num_classes}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
