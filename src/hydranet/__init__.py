"""hydranet: real-time joint semantic segmentation and depth estimation (Nekrasov et al., ICRA 2019)."""

from .checkpoints import create_model, download_released, load_model, save_weights
from .errors import CheckpointError, HydranetError, InputError, WeightsNotFoundError
from .inference.pipeline import preprocess
from .inference.predictor import Prediction, Predictor
from .model import HydraNet, ModelConfig, list_models

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "HydraNet", "HydranetError", "InputError", "ModelConfig", "Prediction", "Predictor",
    "WeightsNotFoundError", "__version__", "create_model", "download_released", "list_models",
    "load_model", "preprocess", "save_weights",
]
