"""The registry of architectures: a name gives a configuration, ``build_model`` a network.

Architecture names (``kitti6``, ``camvid11``...) say what a network is; weights names
(``default``, and ``kitti6`` for the authors' release) say where trained values come from
and live in :mod:`hydranet.checkpoints.registry`. ``build_model(name)`` is randomly
initialised; loading trained values is the checkpoints package's job
(:func:`hydranet.checkpoints.create_model`), so this package never imports it.
"""

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


def kitti6_config() -> ModelConfig:
    """KITTI joint model: 6 classes + depth (the paper's ``ExpKITTI_joint``)."""
    return _config(KITTI6, ("segmentation", "depth"), (0.0, 80.0), "kitti6", "KITTI (Nekrasov et al. 2019)")


def nyud40_config() -> ModelConfig:
    """NYUDv2 joint model: 40 classes + depth (``ExpNYUD_joint``)."""
    return _config(NYUD40, ("segmentation", "depth"), (0.0, 10.0), "nyud40", "NYUDv2 (Nekrasov et al. 2019)")


def nyud_kitti46_config() -> ModelConfig:
    """NYUDv2 + KITTI joint model: 46 classes (0-39 NYUD, 40-45 KITTI) + depth."""
    return _config(NYUD_KITTI46, ("segmentation", "depth"), (0.0, 80.0), "nyud_kitti46",
                   "NYUDv2 + KITTI (Nekrasov et al. 2019)")


def nyud40_three_config() -> ModelConfig:
    """NYUDv2 three-task model: 40 classes + depth + surface normals (``ExpNYUD_three``)."""
    return _config(NYUD40, ("segmentation", "depth", "normals"), (0.0, 10.0), "nyud40_three",
                   "NYUDv2 (Nekrasov et al. 2019)")


def camvid11_config(encoder: str = "mobilenetv2") -> ModelConfig:
    """CamVid's 11 classes + depth, for training on driving scenes."""
    return _config(CAMVID11, ("segmentation", "depth"), (0.0, 80.0), f"camvid11_{encoder}", "", encoder=encoder)


def camvid11_lite0_config() -> ModelConfig:
    """CamVid's 11 classes + depth on EfficientNet-Lite0 (the bundled default's architecture)."""
    return camvid11_config("efficientnet_lite0")


ARCHITECTURES: dict[str, Callable[[], ModelConfig]] = {
    "kitti6": kitti6_config,
    "nyud40": nyud40_config,
    "nyud_kitti46": nyud_kitti46_config,
    "nyud40_three": nyud40_three_config,
    "camvid11": camvid11_config,
    "camvid11_lite0": camvid11_lite0_config,
}


def model_config(name: str) -> ModelConfig:
    """The configuration of architecture ``name`` (no network is built)."""
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}") from None


def build_model(name: str) -> HydraNet:
    """A randomly initialised network of architecture ``name`` (trained weights:
    :func:`hydranet.create_model` with ``weights=``)."""
    return HydraNet(model_config(name))


def list_models() -> list[str]:
    """Names of the registered architectures."""
    return list(ARCHITECTURES)


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


