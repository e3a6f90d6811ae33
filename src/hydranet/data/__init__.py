"""Data: preprocessing, datasets and transforms."""

from .preprocess import normalize_image, preprocess

__all__ = ["normalize_image", "preprocess"]
