"""Image sizes written as ``HEIGHTxWIDTH``: one parser for options, configs and file metadata."""

from __future__ import annotations

from .errors import InputError

Size = tuple[int, int]


def parse_size(text: str | None, minimum: int = 8, dynamic: bool = True) -> Size | None:
    """``"192x640"`` -> ``(192, 640)``; empty -> ``None``; ``"dynamic"`` -> ``None`` where allowed.

    Raises :class:`InputError` (a ``ValueError``) with a message that starts with the text.
    """
    if text is None or not text.strip() or text.strip().lower() == "none":
        return None
    if dynamic and text.strip().lower() == "dynamic":
        return None
    try:
        h, w = (int(v) for v in text.lower().replace("*", "x").split("x"))
    except ValueError:
        extra = " or 'dynamic'" if dynamic else ""
        raise InputError(f"{text!r}: expected HEIGHTxWIDTH in pixels{extra}, e.g. 360x480") from None
    if h < minimum or w < minimum:
        raise InputError(f"{text!r}: height and width must be at least {minimum} pixels")
    return h, w
