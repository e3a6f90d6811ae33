"""Data: the sample protocol, dataset readers, joint transforms and weather.

The normalisation of images lives in :mod:`hydranet.inference.pipeline` (one copy for training
and inference); ``preprocess`` is re-exported here for the reference-style API.
"""

from ..inference.pipeline import preprocess
from .sample import IGNORE_INDEX, collate, has_target, validate_sample
from .weather import WEATHER_KINDS, apply_weather

__all__ = ["IGNORE_INDEX", "WEATHER_KINDS", "apply_weather", "collate", "has_target",
           "preprocess", "validate_sample"]
