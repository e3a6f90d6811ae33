"""``hydranet cache``: the disk cache of converted and quantized engine graphs."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  hydranet cache            # where it is, how many graphs, how much disk
  hydranet cache --prune    # remove the least recently used graphs beyond the limit
  hydranet cache --clear    # remove every graph (the next run converts again, ~2-10 s)

The first run of a model converts it for OpenVINO (and calibrates INT8), once for every input
size unless its graph only holds at one size; the result is kept here, so later runs start at
once. The cache keeps itself under HYDRANET_ENGINE_CACHE_MB (default 1024) by removing the
least recently used graphs; HYDRANET_ENGINE_CACHE=0 turns it off, HYDRANET_HOME moves it."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cache", help="show or clear the cache of converted engine graphs", description=__doc__,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--clear", action="store_true", help="remove every cached graph")
    action.add_argument("--prune", action="store_true",
                        help="remove the least recently used graphs until the cache fits its limit")
    parser.set_defaults(func=run)


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def run(args: argparse.Namespace) -> int:
    from ..export.cache import cache_limit_bytes, engine_cache_dir, entries, prune

    root = engine_cache_dir()
    if root is None:
        print("the engine cache is off (HYDRANET_ENGINE_CACHE=0)")
        return 0
    limit = cache_limit_bytes()
    if args.clear or args.prune:
        removed = prune(0 if args.clear else limit, root=root)
        print(f"removed {len(removed)} graph(s), {_mb(sum(e.size for e in removed))}")
    found = entries(root)
    print(f"{root}: {len(found)} graph(s), {_mb(sum(e.size for e in found))} (limit {_mb(limit)})")
    return 0
