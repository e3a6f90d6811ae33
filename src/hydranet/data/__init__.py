"""Data: preprocessing, the sample protocol, dataset readers, joint transforms and weather."""

from .preprocess import normalize_image, preprocess
from .sample import IGNORE_INDEX, collate, has_target, validate_sample
from .weather import WEATHER_KINDS, apply_weather

__all__ = ["IGNORE_INDEX", "WEATHER_KINDS", "apply_weather", "collate", "has_target", "normalize_image",
           "preprocess", "validate_sample"]
