"""``hydranet export``: write the network as ONNX or OpenVINO IR (fp32, bf16 or INT8) and check it."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from ..errors import InputError
from .options import parse_size_option

DESCRIPTION = """\
Export weights to ONNX (for ONNX Runtime and most inference engines) or to OpenVINO IR,
in fp32, bf16 (OpenVINO; used on CPUs with AVX512_BF16 or AMX) or INT8 (post-training
quantization: static QDQ for ONNX, NNCF for OpenVINO) calibrated on your images.

The exported file carries the model configuration (classes, palette, normalisation) in
its metadata, so `hydranet predict --weights model.onnx --backend onnxruntime` and the
Python API can run it without the original weights. After writing, the command runs the
exported model and PyTorch on the check images and prints the largest output difference
and how many pixels get the same class."""

EPILOG = """\
examples:
  hydranet export --format onnx --out hydranet.onnx   # the bundled model, any input size
  hydranet export --weights kitti6 --format openvino --precision int8 \\
      --calibration my_frames/ --size 192x640 --out kitti6-int8.xml
  hydranet export --weights model.safetensors --format onnx --precision int8 --out m-int8.onnx

INT8 needs calibration images that look like your deployment (50-100 frames are plenty);
without --calibration, generated street scenes are used, which are only a stand-in.
Check images are the calibration images when given, otherwise generated scenes."""

FORMATS = {"onnx": ".onnx", "openvino": ".xml"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export to ONNX / OpenVINO (fp32, bf16, INT8)", description=DESCRIPTION,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="default",
                        help="weights file (.ckpt, .safetensors) or registered name (default: the bundled model)")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="onnx or openvino (IR .xml + .bin)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"),
                        help="fp32 (default), bf16 (openvino only) or int8")
    parser.add_argument("--int8-weights", default="auto", choices=("auto", "s8", "u8"),
                        help="ONNX INT8 weight type: s8 needs VNNI to be exact, u8 is safe on any x86 CPU "
                             "(auto: s8 if this CPU has VNNI)")
    parser.add_argument("--calibration", metavar="DIR", help="folder of images for INT8 calibration and the check")
    parser.add_argument("--calibration-count", type=int, default=50, metavar="N",
                        help="calibration images to use (default 50)")
    parser.add_argument("--size", default="dynamic", metavar="HxW",
                        help="fixed input size, e.g. 192x640 (a little faster), or 'dynamic' (default)")
    parser.add_argument("--out", required=True, metavar="PATH", help="output file (.onnx, or .xml for openvino)")
    parser.add_argument("--check-images", type=int, default=8, metavar="N",
                        help="images to compare against PyTorch (default 8; 0 skips the check)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.set_defaults(func=run)


def _output_path(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    suffix = FORMATS[args.format]
    if out.suffix.lower() != suffix:
        raise InputError(f"{out}: a {args.format} export is written as a '{suffix}' file; "
                         f"name it {out.with_suffix(suffix).name}")
    targets = [out] + ([out.with_suffix(".bin")] if args.format == "openvino" else [])
    existing = [p for p in targets if p.exists()]
    if existing and not args.overwrite:
        raise InputError(f"{existing[0]}: already exists; pass --overwrite to replace it")
    return out


def run(args: argparse.Namespace) -> int:
    from ..checkpoints import load_model
    from ..export.calibration import CalibrationSource, calibration_batches
    from ..export.check import check_against_torch, format_agreement
    from ..export.onnx import SizeSpecificModelError
    from ..inference.backends import OPTIONAL_BACKENDS, BackendUnavailableError, create_backend
    from ..inference.backends import missing_dependency_message

    if args.format == "onnx" and args.precision == "bf16":
        raise InputError("--precision bf16 is for --format openvino; ONNX Runtime has no bf16 CPU kernels "
                         "for this network")
    size = parse_size_option(args.size, dynamic=True)
    out = _output_path(args)
    backend_name = "onnxruntime" if args.format == "onnx" else "openvino"
    module = OPTIONAL_BACKENDS[backend_name][2]
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise BackendUnavailableError(missing_dependency_message(backend_name))

    model = load_model(args.weights)
    work_size = size or (192, 640)
    calibration = None
    started = time.perf_counter()
    if args.precision == "int8":
        # As the engines calibrate: a dynamic graph at the sizes the weights see (CalibrationSource).
        source = CalibrationSource(model.config, args.calibration, args.calibration_count,
                                   [size] if size else None)
        calibration = source.batches(size)
        what = f"images from {args.calibration}" if args.calibration else "generated street scenes"
        at = sorted({f"{b.shape[2]}x{b.shape[3]}" for b in calibration})
        print(f"calibrating INT8 on {len(calibration)} {what} at {', '.join(at)} ...", file=sys.stderr)

    try:
        _export(model, args, out, size, calibration)
    except SizeSpecificModelError as exc:
        raise InputError(f"{exc}; export at a fixed size with --size HxW (e.g. --size 360x480)") from None
    elapsed = time.perf_counter() - started
    megabytes = sum(p.stat().st_size for p in (out, out.with_suffix(".bin")) if p.exists()) / 1e6
    shape = f"{work_size[0]}x{work_size[1]} fixed" if size else "dynamic height and width"
    print(f"wrote {out} ({megabytes:.1f} MB; {args.format} {args.precision}; input N x 3 x H x W, {shape}) "
          f"in {elapsed:.1f} s")

    if args.check_images <= 0:
        return 0
    if args.calibration:
        check = calibration_batches(model.config, args.calibration, args.check_images, work_size)
        source = f"images from {args.calibration} (also used for calibration)" if calibration else \
            f"images from {args.calibration}"
    else:
        check = calibration_batches(model.config, None, args.check_images, work_size, seed=7)
        source = "generated street scenes (not used for calibration)" if calibration else "generated street scenes"
    backend = create_backend(backend_name, out)
    agreement = check_against_torch(model, backend, check)
    print(f"check against PyTorch fp32 on {len(check)} {source}, {work_size[0]}x{work_size[1]}:")
    tolerance = 1e-4 if args.precision == "fp32" else None
    for line in format_agreement(agreement, tolerance):
        print(line)
    if args.precision == "bf16" and getattr(backend, "effective_precision", None):
        real = backend.effective_precision(check[0].shape)
        if real != "bf16":
            print(f"  note: this CPU has no bf16 support (AVX512_BF16 / AMX): OpenVINO runs it in {real}; "
                  "the file uses bf16 on CPUs that have it")
    if tolerance is not None and max(agreement.max_abs_diff.values()) > tolerance:
        print(f"hydranet: warning: the fp32 export differs from PyTorch by more than {tolerance:g}",
              file=sys.stderr)
        return 1
    return 0


def _export(model, args: argparse.Namespace, out: Path, size, calibration) -> None:
    from ..export.onnx import export_onnx

    if args.format == "onnx":
        if args.precision == "int8":
            from ..export.quantize import quantize_onnx

            with tempfile.TemporaryDirectory(prefix="hydranet-export-") as tmp:
                fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", size=size)
                quantize_onnx(fp32, out, calibration, args.int8_weights)
        else:
            export_onnx(model, out, size=size)
    else:
        from ..export.openvino import export_openvino

        export_openvino(model, out, precision=args.precision, size=size, calibration=calibration)
