"""``hydranet weights``: list, download and locate released checkpoints; pack or average trained ones."""

from __future__ import annotations

import argparse

from ..checkpoints import (
    RELEASED,
    WEIGHTS,
    average_weights,
    bundled_path,
    cache_dir,
    cached_path,
    download_released,
    pack_weights,
)

EPILOG = """\
examples:
  hydranet weights list
  hydranet weights download kitti6
  HYDRANET_WEIGHTS_URL=http://127.0.0.1:8000 hydranet weights download nyud40
  hydranet weights pack runs/default/best.safetensors small.safetensors --name mymodel
  hydranet weights average runs/a/last.safetensors runs/b/last.safetensors soup.safetensors

Files go to the per-user cache ($HYDRANET_HOME/weights, else ~/.cache/hydranet/weights)
and are verified by their git blob id before they replace anything. The released
weights are the authors' (non-commercial licence); `load_model("kitti6")` finds them
there afterwards. `pack` re-saves trained weights as float16 (half the size; loaded back
into float32) under a new name, keeping the training metadata. `average` writes the
weighted mean of fine-tuned copies of one model (a model soup, e.g. a model and its
fine-tuned descendant: keeps most of what fine-tuning gained, forgets less)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weights", help="list, download and locate weights", description=__doc__,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="registered weights and whether they are available")
    dl = actions.add_parser("download", help="fetch released checkpoints into the cache")
    dl.add_argument("names", nargs="+", choices=sorted(RELEASED), metavar="NAME",
                    help=f"one or more of: {', '.join(RELEASED)}")
    dl.add_argument("--url", help="download from this URL instead (one name only)")
    dl.add_argument("--force", action="store_true", help="download even if a verified copy exists")
    path = actions.add_parser("path", help="print the cached file of a name")
    path.add_argument("name", choices=sorted(RELEASED), metavar="NAME")
    pack = actions.add_parser("pack", help="re-save trained weights as float16 under a new name")
    pack.add_argument("source", help="a .safetensors file written by hydranet train")
    pack.add_argument("out", help="the file to write")
    pack.add_argument("--name", help="the model name stored in the file (default: keep)")
    pack.add_argument("--float32", action="store_true", help="keep float32 tensors")
    avg = actions.add_parser("average", help="average fine-tuned copies of one model (a model soup)")
    avg.add_argument("sources", nargs="+", metavar="SOURCE",
                     help="two or more .safetensors files of the same network")
    avg.add_argument("out", help="the file to write")
    avg.add_argument("--mix", type=float, nargs="+", metavar="SHARE",
                     help="one share per source, normalised to sum to one (default: equal)")
    avg.add_argument("--name", help="the model name stored in the file (default: the first's)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        print(f"{'name':<14}{'architecture':<16}{'available':<11}description")
        for name, entry in WEIGHTS.items():
            have = bundled_path(name) is not None if entry.source == "bundled" else cached_path(name).is_file()
            where = "bundled" if entry.source == "bundled" else entry.filename
            print(f"{name:<14}{entry.architecture:<16}{'yes' if have else 'no':<11}{entry.description} ({where})")
        print(f"cache: {cache_dir()}")
        return 0
    if args.action == "pack":
        import torch

        out = pack_weights(args.source, args.out, args.name, None if args.float32 else torch.float16)
        print(f"{out}: {out.stat().st_size / 1e6:.1f} MB")
        return 0
    if args.action == "average":
        out = average_weights(args.sources, args.out, args.mix, args.name)
        print(f"{out}: mean of {len(args.sources)} files")
        return 0
    if args.action == "path":
        print(cached_path(args.name))
        return 0
    if args.url and len(args.names) != 1:
        print("hydranet: error: --url takes exactly one weights name")
        return 2
    for name in args.names:
        path = download_released(name, url=args.url, force=args.force)
        print(f"{name}: {path}")
    return 0
