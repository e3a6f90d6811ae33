"""What the benchmark ran on: CPU, instruction sets that matter for inference, load, versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

# Instruction sets that decide which kernels the engines can use.
ISA_FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                              "amx_tile", "amx_bf16", "amx_int8")
PACKAGES: tuple[str, ...] = ("torch", "onnx", "onnxruntime", "openvino", "nncf", "numpy", "av",
                             "opencv-python-headless")


def cpu_info() -> dict:
    """Model name, family/model numbers, logical CPUs usable here and ISA flags present."""
    info: dict = {"machine": platform.machine(), "cpus": _usable_cpus()}
    text = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        pass
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        elif fields:
            break  # first processor block only
    info["model_name"] = fields.get("model name", platform.processor() or "unknown")
    if "cpu family" in fields:
        info["family"] = int(fields["cpu family"])
        info["model"] = int(fields.get("model", "0"))
    flags = set(fields.get("flags", "").split())
    info["isa"] = [f for f in ISA_FLAGS if f in flags]
    return info


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def describe_cpu(info: dict) -> str:
    """One line, e.g. ``AMD EPYC (family 25 model 1), 2 CPUs, avx2 fma``."""
    family = f" (family {info['family']} model {info['model']})" if "family" in info else ""
    isa = " ".join(info.get("isa", [])) or "no AVX2"
    return f"{info['model_name']}{family}, {info['cpus']} CPUs, {isa}"


def load_average() -> tuple[float, float, float] | None:
    """1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def versions() -> dict[str, str]:
    """Installed versions of the packages that matter for speed."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found
