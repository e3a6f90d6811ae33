"""The ``hydranet`` program: one parser, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..errors import HydranetError, debug_enabled

# Each module defines ``register(subparsers)``, which adds its parser and sets ``func``.
COMMAND_MODULES: tuple[str, ...] = (
    "weights",
    "info",
    "predict",
    "serve",
    "export",
    "bench",
    "cache",
    "demo",
    "train",
    "eval",
    "pseudo_label",
    "pseudo_depth",
)

DESCRIPTION = """\
Joint semantic segmentation and metric depth from one image, one network, one pass
(HydraNet: MobileNetV2 + Light-Weight RefineNet, Nekrasov et al., ICRA 2019).

Run `hydranet COMMAND --help` for the options and examples of each command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hydranet", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hydranet {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, also print the traceback (or set HYDRANET_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(subparsers)
    return parser


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C, so open videos are finished and temporary files removed.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # A user's mistake is one line; --debug adds the traceback above it, for bug reports. The
    # environment carries it to code that reports an input's failure and carries on (predict).
    debug = bool(getattr(args, "debug", False)) or debug_enabled()
    before = os.environ.get("HYDRANET_DEBUG")
    if debug:
        os.environ["HYDRANET_DEBUG"] = "1"
    try:
        with warnings.catch_warnings():
            if not debug:  # one line a warning, as errors are; --debug keeps Python's own format
                warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except HydranetError as exc:
        _traceback(debug)
        print(f"hydranet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _traceback(debug)
        print("hydranet: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk, a read-only folder: the file and the cause in one line
        _traceback(debug)
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"hydranet: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        if before is None:
            os.environ.pop("HYDRANET_DEBUG", None)
        else:
            os.environ["HYDRANET_DEBUG"] = before


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    from tqdm import tqdm

    text = " ".join(str(message).split())
    tqdm.write(f"hydranet: warning: {text}", file=file or sys.stderr)  # above a progress bar, not through it


def _traceback(debug: bool) -> None:
    if debug:
        traceback.print_exc(file=sys.stderr)
