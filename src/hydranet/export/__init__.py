"""Export to ONNX and OpenVINO IR, INT8 quantization, and checking an export against PyTorch.

Heavy optional packages (onnx, onnxruntime, openvino, nncf) are imported only by the
functions that need them.
"""

from .calibration import calibration_batches, generated_images, load_images, to_batches
from .onnx import export_onnx, parse_size, read_onnx_config, read_onnx_metadata
from .openvino import convert_to_openvino, export_openvino, read_openvino, save_openvino

__all__ = [
    "calibration_batches", "convert_to_openvino", "export_onnx", "export_openvino", "generated_images",
    "load_images", "parse_size", "read_onnx_config", "read_onnx_metadata", "read_openvino",
    "save_openvino", "to_batches",
]
