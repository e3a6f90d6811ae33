"""One factory per released configuration, plus a generic one for custom class counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..labels import CAMVID11, KITTI6, NYUD40, NYUD_KITTI46, LabelSet, generic_label_set
from .config import ModelConfig
from .hydranet import HydraNet


def _config(label_set: LabelSet, tasks: Sequence[str], depth_range: tuple[float, float],
            name: str, training_data: str, encoder: str = "mobilenetv2") -> ModelConfig:
    return ModelConfig(
        num_classes=label_set.num_classes,
        tasks=tuple(tasks),
        encoder=encoder,
        label_set=label_set.name,
        class_names=list(label_set.class_names),
        palette=[list(c) for c in label_set.palette],
        depth_range=depth_range,
        name=name,
        training_data=training_data,
    )


def kitti6() -> HydraNet:
    """KITTI joint model: 6 classes + depth (the paper's ``ExpKITTI_joint``)."""
    return HydraNet(_config(KITTI6, ("segmentation", "depth"), (0.0, 80.0), "kitti6",
                            "KITTI (Nekrasov et al. 2019)"))


def nyud40() -> HydraNet:
    """NYUDv2 joint model: 40 classes + depth (``ExpNYUD_joint``)."""
    return HydraNet(_config(NYUD40, ("segmentation", "depth"), (0.0, 10.0), "nyud40",
                            "NYUDv2 (Nekrasov et al. 2019)"))


def nyud_kitti46() -> HydraNet:
    """NYUDv2 + KITTI joint model: 46 classes (0-39 NYUD, 40-45 KITTI) + depth."""
    return HydraNet(_config(NYUD_KITTI46, ("segmentation", "depth"), (0.0, 80.0),
                            "nyud_kitti46", "NYUDv2 + KITTI (Nekrasov et al. 2019)"))


def nyud40_three() -> HydraNet:
    """NYUDv2 three-task model: 40 classes + depth + surface normals (``ExpNYUD_three``)."""
    return HydraNet(_config(NYUD40, ("segmentation", "depth", "normals"), (0.0, 10.0),
                            "nyud40_three", "NYUDv2 (Nekrasov et al. 2019)"))


def camvid11(encoder: str = "mobilenetv2") -> HydraNet:
    """CamVid's 11 classes + depth, for training on driving scenes."""
    return HydraNet(_config(CAMVID11, ("segmentation", "depth"), (0.0, 80.0),
                            f"camvid11_{encoder}", "", encoder=encoder))


def hydranet(num_classes: int, tasks: Sequence[str] = ("segmentation", "depth"),
             encoder: str = "mobilenetv2", class_names: Sequence[str] | None = None,
             palette: Sequence[Sequence[int]] | None = None) -> HydraNet:
    """A HydraNet for any class count; names and colours default to numbered VOC colours."""
    generic = generic_label_set(num_classes)
    return HydraNet(ModelConfig(
        num_classes=num_classes,
        tasks=tuple(tasks),
        encoder=encoder,
        class_names=list(class_names) if class_names is not None else list(generic.class_names),
        palette=[list(c) for c in palette] if palette is not None else [list(c) for c in generic.palette],
    ))


MODEL_FACTORIES: dict[str, Callable[[], HydraNet]] = {
    "kitti6": kitti6,
    "nyud40": nyud40,
    "nyud_kitti46": nyud_kitti46,
    "nyud40_three": nyud40_three,
    "camvid11": camvid11,
}


def create_model(name: str) -> HydraNet:
    """A randomly initialised model of a named configuration."""
    try:
        factory = MODEL_FACTORIES[name]
    except KeyError:
        raise KeyError(f"unknown configuration {name!r}; known: {', '.join(MODEL_FACTORIES)}") from None
    return factory()


def list_models() -> list[str]:
    """Names of the built-in configurations."""
    return list(MODEL_FACTORIES)
