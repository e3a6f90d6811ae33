"""Speed measurement: the reference baseline, fair interleaved timing, video end to end, reports."""

from .baseline import ReferenceEagerBackend, reference_copy
from .timing import Timing, measure_interleaved

__all__ = ["ReferenceEagerBackend", "Timing", "measure_interleaved", "reference_copy"]
