"""The network: encoder, decoder, heads and the registry of architectures that assemble them."""

from .config import ModelConfig
from .factory import ARCHITECTURES, build_model, hydranet, list_models, model_config
from .hydranet import HydraNet

__all__ = ["ARCHITECTURES", "HydraNet", "ModelConfig", "build_model", "hydranet", "list_models", "model_config"]
