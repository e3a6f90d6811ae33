"""What this CPU can do for inference: instruction-set flags (Linux /proc/cpuinfo)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The flags of the first CPU in /proc/cpuinfo (empty where it does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def has_vnni() -> bool:
    """Whether int8 dot products have VNNI (AVX512-VNNI or AVX-VNNI) instructions.

    Without them, x86 u8 x s8 kernels (VPMADDUBSW) add pairs of products in saturating
    16-bit arithmetic, which can clip: ONNX Runtime then needs u8 weights for accuracy.
    """
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())


def has_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512_BF16 or AMX), where OpenVINO runs bf16."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
