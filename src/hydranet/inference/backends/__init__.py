"""Inference backends, by name. Each module registers a factory taking a loaded model.

``torch`` is always there. ``onnxruntime`` and ``openvino`` are registered when their
package is installed (``pip install hydranet[onnx]`` / ``hydranet[openvino]``); their
modules are imported on first use, so ``import hydranet`` stays fast. ``auto`` picks the
fastest installed backend (:func:`default_backend`).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import HydranetError
from ...model import HydraNet
from .base import Backend
from .torch_backend import TorchBackend

BackendFactory = Callable[..., Backend]

# Optional backends: name -> (module in this package, class, package it needs, pip extra).
OPTIONAL_BACKENDS: dict[str, tuple[str, str, str, str]] = {
    "openvino": ("openvino_backend", "OpenVINOBackend", "openvino", "openvino"),
    "onnxruntime": ("onnxruntime_backend", "OnnxRuntimeBackend", "onnxruntime", "onnx"),
}
# Fastest first, as measured on CPUs by `hydranet bench` (README, "Speed on a CPU").
PREFERENCE: tuple[str, ...] = ("openvino", "onnxruntime", "torch")
# Files written by `hydranet export`, and the backend that runs each by default.
EXPORTED_SUFFIXES: dict[str, str] = {".xml": "openvino", ".onnx": "onnxruntime"}


class BackendUnavailableError(HydranetError, ImportError):
    """A backend's optional dependency is not installed (or does not import)."""


def missing_dependency_message(name: str, reason: str = "") -> str:
    """The one-line message for an optional backend whose package is missing."""
    _, _, package, extra = OPTIONAL_BACKENDS[name]
    detail = f" ({reason})" if reason else ""
    return f"backend {name!r} needs `pip install hydranet[{extra}]`: package {package!r} is not importable{detail}"


def _lazy_factory(name: str) -> BackendFactory:
    module_name, class_name, _, _ = OPTIONAL_BACKENDS[name]

    def factory(model: Any, **options: Any) -> Backend:
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ImportError as exc:
            raise BackendUnavailableError(missing_dependency_message(name, str(exc))) from None
        return getattr(module, class_name)(model, **options)

    factory.__name__ = f"create_{name}_backend"
    factory.__doc__ = f"Import and create the {class_name} (hydranet.inference.backends.{module_name})."
    return factory


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


# name -> factory(model, **options). Optional backends register here when installed.
BACKENDS: dict[str, BackendFactory] = {"torch": TorchBackend}
for _name, (_module, _class, _package, _extra) in OPTIONAL_BACKENDS.items():
    if _installed(_package):
        BACKENDS[_name] = _lazy_factory(_name)


def available_backends() -> list[str]:
    """Names of the backends whose dependencies are installed, fastest first."""
    return [name for name in PREFERENCE if name in BACKENDS] + [n for n in BACKENDS if n not in PREFERENCE]


def default_backend() -> str:
    """The fastest installed backend: openvino, else onnxruntime, else torch."""
    return available_backends()[0]


def backend_for_file(path: str | Path) -> str | None:
    """The backend that runs an exported file (``.xml`` -> openvino, ``.onnx`` -> onnxruntime)."""
    return EXPORTED_SUFFIXES.get(Path(path).suffix.lower())


def create_backend(name: str, model: HydraNet | str | Path, **options: Any) -> Backend:
    """A backend running ``model``; a clear error when its dependency is not installed.

    ``name`` is a backend name or ``"auto"`` (the fastest installed). ``model`` is a loaded
    :class:`HydraNet`, or for ``onnxruntime`` / ``openvino`` the path of a file written by
    ``hydranet export`` (``.onnx``; ``.xml`` for OpenVINO, which also reads ``.onnx``).
    """
    if name == "auto":
        name = backend_for_file(model) if isinstance(model, (str, Path)) else None
        name = name if name in BACKENDS else default_backend()
    if name not in BACKENDS:
        if name in OPTIONAL_BACKENDS:
            raise BackendUnavailableError(missing_dependency_message(name))
        raise HydranetError(f"unknown backend {name!r}; available: {', '.join(available_backends())}, auto")
    if isinstance(model, (str, Path)):
        suffix = Path(model).suffix.lower()
        if name == "torch" or suffix not in EXPORTED_SUFFIXES or (name == "onnxruntime" and suffix != ".onnx"):
            raise HydranetError(f"{model}: backend {name!r} cannot run this file; pass a loaded model, "
                                "an .onnx file (onnxruntime, openvino) or an OpenVINO .xml (openvino)")
    return BACKENDS[name](model, **options)


__all__ = [
    "BACKENDS", "Backend", "BackendUnavailableError", "OPTIONAL_BACKENDS", "TorchBackend",
    "available_backends", "backend_for_file", "create_backend", "default_backend",
    "missing_dependency_message",
]
