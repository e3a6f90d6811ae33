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
