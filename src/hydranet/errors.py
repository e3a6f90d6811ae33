"""Errors that describe a user mistake; the CLI prints them as one line, without a traceback."""

import os


class HydranetError(Exception):
    """Base class for errors caused by input the user can fix."""


class CheckpointError(HydranetError, ValueError):
    """A weights file cannot be used: its message names the file and the fix."""


class WeightsNotFoundError(HydranetError, FileNotFoundError):
    """Named weights are not available locally."""


class DownloadError(HydranetError, OSError):
    """A download failed or did not verify."""


class InputError(HydranetError, ValueError):
    """An input image, video or dataset file cannot be used."""


def debug_enabled() -> bool:
    """Whether tracebacks are wanted besides the one-line messages (``hydranet --debug`` or HYDRANET_DEBUG=1)."""
    return os.environ.get("HYDRANET_DEBUG", "") not in ("", "0")
