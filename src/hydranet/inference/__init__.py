"""Inference: backends, prediction, rendering and media input/output."""
