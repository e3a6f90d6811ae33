"""The plain static export: what anyone would write in ten lines, the yardstick for hydranet's engines.

``torch.onnx.export`` of the network at one fixed input shape, ``openvino.Core().read_model``,
optionally NNCF ``quantize`` with its default settings, compiled with ``INFERENCE_NUM_THREADS``
and ``PERFORMANCE_HINT=LATENCY``. No channels-last, no separable pools, no layout or pad work:
hydranet's own engines should beat it, and ``hydranet bench`` times it beside them.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..model import HydraNet


class _Outputs(torch.nn.Module):
    def __init__(self, net: HydraNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return out["segmentation"], out["depth"]


class PlainOpenVINO:
    """One static OpenVINO model per input shape, built at its first call.

    ``calibration(size)`` gives normalised ``(1, 3, h, w)`` inputs for INT8 (``None``: fp32);
    they are stacked to the batch of the shape being built, as a static graph needs.
    """

    def __init__(self, model: HydraNet, threads: int,
                 calibration: Callable[[tuple[int, int]], list[np.ndarray]] | None = None) -> None:
        self.model = copy.deepcopy(model).eval()
        self.threads = int(threads)
        self.calibration = calibration
        self.precision = "int8" if calibration is not None else "fp32"
        self._requests: dict[tuple[int, ...], object] = {}

    def _build(self, shape: tuple[int, ...]) -> object:
        from ..export.offline import import_openvino

        ov = import_openvino()
        n, _, h, w = shape
        core = ov.Core()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "plain.onnx"
            torch.onnx.export(_Outputs(self.model), torch.zeros(n, 3, h, w), str(path),
                              input_names=["input"], output_names=["segmentation", "depth"],
                              opset_version=17, dynamo=False)
            ov_model = core.read_model(str(path))
        if self.calibration is not None:
            import nncf  # after import_openvino: its telemetry is off

            items = [c.astype(np.float32) for c in self.calibration((h, w))]
            batches = [np.concatenate(items[i:i + n]) for i in range(0, len(items) - n + 1, n)] or \
                [np.concatenate([items[0]] * n)]
            ov_model = nncf.quantize(ov_model, nncf.Dataset(batches))
        compiled = core.compile_model(ov_model, "CPU", {"INFERENCE_NUM_THREADS": self.threads,
                                                        "PERFORMANCE_HINT": "LATENCY"})
        return compiled.create_infer_request()

    def prepare(self, shape: tuple[int, ...]) -> None:
        """Build the model for ``shape`` now (so that timing does not include it)."""
        if tuple(shape) not in self._requests:
            self._requests[tuple(shape)] = self._build(tuple(shape))

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.prepare(x.shape)
        request = self._requests[tuple(x.shape)]
        request.infer({0: x})  # type: ignore[attr-defined]
        return {"segmentation": request.get_output_tensor(0).data,  # type: ignore[attr-defined]
                "depth": request.get_output_tensor(1).data}  # type: ignore[attr-defined]

    def effective_precision(self) -> str:
        """What the compiled fp32 parts run in (OpenVINO picks bf16 on CPUs that have it)."""
        from ..export.openvino import effective_precision

        if not self._requests:
            return "unbuilt"
        request = next(iter(self._requests.values()))
        return effective_precision(request.get_compiled_model())  # type: ignore[attr-defined]
