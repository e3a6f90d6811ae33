"""Option values shared by several subcommands, parsed into one-line user errors."""

from __future__ import annotations

from ..errors import InputError
from ..sizes import Size, parse_size


def parse_size_option(text: str | None, option: str = "--size", minimum: int = 8,
                      dynamic: bool = False) -> Size | None:
    """:func:`hydranet.sizes.parse_size` with the option's name in the error."""
    try:
        return parse_size(text, minimum=minimum, dynamic=dynamic)
    except InputError as exc:
        raise InputError(f"{option} {exc}") from None


def parse_inference_size(text: str | None, option: str = "--size") -> Size | str | None:
    """``--size`` of the commands that run a model: ``HxW``, ``native``, or nothing (automatic)."""
    if text is not None and text.strip().lower() == "native":
        return "native"
    return parse_size_option(text, option)


def parse_camera(intrinsics: str | None, calib: str | None):
    """``--intrinsics FX,FY,CX,CY`` or ``--calib FILE`` -> ``Intrinsics`` (None when neither)."""
    from ..inference.pointcloud import parse_intrinsics, read_kitti_calib

    if intrinsics:
        return parse_intrinsics(intrinsics)
    return read_kitti_calib(calib) if calib else None
