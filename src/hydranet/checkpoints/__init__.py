"""Reading and writing weights: the authors' checkpoints, the project's safetensors, downloads."""

from .download import download_released, git_blob_id
from .loader import bundled_path, create_model, load_model, registered_names, resolve_weights
from .official import infer_config, load_official, read_state_dict
from .own import average_weights, load_own, pack_weights, read_metadata, save_weights
from .registry import RELEASED, WEIGHTS, WeightsEntry, weights_for_architecture
from .released import cache_dir, cached_path

__all__ = [
    "RELEASED", "WEIGHTS", "WeightsEntry", "average_weights", "bundled_path", "cache_dir", "cached_path", "download_released",
    "create_model", "git_blob_id", "infer_config", "load_model", "load_official", "load_own", "pack_weights", "read_metadata",
    "read_state_dict", "registered_names", "resolve_weights", "save_weights", "weights_for_architecture",
]
