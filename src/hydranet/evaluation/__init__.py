"""Evaluation: segmentation and depth metrics, standard protocols, corruption robustness."""

from .metrics import DepthMetrics, SegmentationMetrics
from .protocols import PROTOCOLS, DepthProtocol, get_protocol

__all__ = ["PROTOCOLS", "DepthMetrics", "DepthProtocol", "SegmentationMetrics", "get_protocol"]
