"""The registry of weights: a name gives an architecture and where its trained values come from.

``bundled`` weights ship inside the package (``hydranet/weights/``); ``released`` ones are the
authors' checkpoints, downloaded once into the cache and verified by their git blob id.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsEntry:
    """One registered weights name: its architecture, source, file and (for downloads) blob id."""

    name: str
    architecture: str
    source: str  # "bundled" | "released"
    filename: str
    description: str
    git_blob_id: str = ""
    # A download larger than this is refused (the released files are 12-13 MB).
    max_bytes: int = 64 << 20
    # The precisions the default (fast) path may run these weights in on OpenVINO, in order of
    # preference; the first this CPU has is used (bf16 needs AVX512_BF16 or AMX), else fp32.
    # Only precisions whose cost was measured within the limits of docs/BENCHMARKS.md; other
    # engines run fp32.
    fast_precision: tuple[str, ...] = ()


WEIGHTS: dict[str, WeightsEntry] = {
    w.name: w
    for w in (
        # Measured by benchmarks/default_engine_accuracy.py, OpenVINO INT8 calibrated on generated
        # street scenes: on AVX2 Zen 3 mIoU -0.11 / abs rel -3.9 % (2026-12-07, calibrated once at
        # three sizes), about twice as fast as f32; on an AVX-512 VNNI + AMX Xeon mIoU -0.39 /
        # abs rel -4.2 % (calibrated at each size), 26 % less time than bf16 (-0.05 / +1.1 %).
        # INT8 is the default everywhere; it calibrates once (~10 s, then cached).
        WeightsEntry("default", "camvid11_lite0", "bundled", "default.safetensors",
                     "bundled model trained by hydranet (CamVid classes + metric depth)",
                     fast_precision=("int8",)),
        WeightsEntry("kitti6", "kitti6", "released", "ExpKITTI_joint.ckpt", "KITTI: 6 classes + depth",
                     "d9386a96f748001406c622100ce944333d1967ff"),
        WeightsEntry("nyud40", "nyud40", "released", "ExpNYUD_joint.ckpt", "NYUDv2: 40 classes + depth",
                     "56f5f5a6bc08a64f36e83547140add41baa4216d"),
        WeightsEntry("nyud_kitti46", "nyud_kitti46", "released", "ExpNYUDKITTI_joint.ckpt",
                     "NYUDv2 + KITTI: 46 classes + depth", "54f57cc2bd15e5cdfa9f3f1eaba9760951218bfa"),
        WeightsEntry("nyud40_three", "nyud40_three", "released", "ExpNYUD_three.ckpt",
                     "NYUDv2: 40 classes + depth + surface normals",
                     "6f412c152600827cabff5e1b66efad50090c16a7"),
    )
}

# The released subset, by name (what `hydranet weights download` offers).
RELEASED: dict[str, WeightsEntry] = {n: w for n, w in WEIGHTS.items() if w.source == "released"}


def weights_for_architecture(architecture: str) -> str:
    """The registered weights name of an architecture (the bundled one first)."""
    for source in ("bundled", "released"):
        for entry in WEIGHTS.values():
            if entry.architecture == architecture and entry.source == source:
                return entry.name
    raise KeyError(f"no registered weights for architecture {architecture!r}; "
                   f"registered: {', '.join(f'{w.name} ({w.architecture})' for w in WEIGHTS.values())}")
