"""The network: encoder, decoder, heads and the factories that assemble them."""

from .config import ModelConfig
from .factory import (
    MODEL_FACTORIES,
    camvid11,
    create_model,
    hydranet,
    kitti6,
    list_models,
    nyud40,
    nyud40_three,
    nyud_kitti46,
)
from .hydranet import HydraNet

__all__ = [
    "HydraNet", "ModelConfig", "MODEL_FACTORIES", "create_model", "list_models", "hydranet",
    "kitti6", "nyud40", "nyud_kitti46", "nyud40_three", "camvid11",
]
