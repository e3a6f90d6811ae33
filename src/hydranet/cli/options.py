"""Option values shared by several subcommands, parsed into one-line user errors."""

from __future__ import annotations

from ..errors import InputError

Size = tuple[int, int]


def parse_size_option(text: str | None, option: str = "--size", minimum: int = 8,
                      dynamic: bool = False) -> Size | None:
    """``"HxW"`` -> ``(H, W)``; empty -> ``None``; ``"dynamic"`` -> ``None`` where allowed."""
    if text is None or not text.strip():
        return None
    if dynamic and text.strip().lower() == "dynamic":
        return None
    try:
        h, w = (int(v) for v in text.lower().replace("*", "x").split("x"))
    except ValueError:
        extra = " or 'dynamic'" if dynamic else ""
        raise InputError(f"{option} {text!r}: expected HEIGHTxWIDTH in pixels{extra}, e.g. 360x480") from None
    if h < minimum or w < minimum:
        raise InputError(f"{option} {text!r}: height and width must be at least {minimum} pixels")
    return h, w
