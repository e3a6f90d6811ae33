"""``hydranet train``: train a HydraNet from a YAML config, with asymmetric annotations."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

EPILOG = """\
examples:
  hydranet train --config configs/examples/camvid_record.yaml
  hydranet train --config configs/examples/camvid_record.yaml steps=200 optim.lr_decoder=0.005 output=runs/try
  hydranet train --config configs/examples/kitti_asymmetric.yaml --init ExpKITTI_joint.ckpt
  hydranet train --config configs/examples/camvid_record.yaml --resume runs/camvid_record/last.pt
  torchrun --nproc_per_node 2 -m hydranet train --config configs/examples/camvid_record.yaml

Each dataset entry says which targets it supplies (segmentation, depth); a sample
without a target contributes nothing to that task's loss. `pseudo_labels: DIR`
(from `hydranet pseudo-label`) fills segmentation where the real label is missing.
Ctrl-C writes OUTPUT/last.pt; --resume continues exactly where training stopped.
Outputs: best.safetensors, last.safetensors, last.pt, train.csv, val.csv, tensorboard/.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train on real datasets (segmentation and/or depth per sample)",
        description=__doc__ + "\n\nConfig keys can be overridden as key.sub=value after the options.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", "-c", help="YAML config (see configs/)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. steps=100")
    parser.add_argument("--output", "-o", help="output folder (config key output)")
    parser.add_argument("--init", help="weights to start from (.safetensors or released .ckpt)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps", type=int, help="optimiser steps in total (overrides epochs)")
    parser.add_argument("--batch-size", type=int, help="global batch size")
    parser.add_argument("--resume", nargs="?", const="", default=None, metavar="STATE",
                        help="continue from a training checkpoint (default OUTPUT/last.pt)")
    parser.add_argument("--stop-after", type=int, metavar="N",
                        help="stop (and checkpoint) after N more steps; the schedule still spans all steps")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier run in the output folder (without it, or --resume, that is refused)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on CPU")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import CheckpointError
    from ..training.config import load_config
    from ..training.distributed import init_distributed, shutdown_distributed
    from ..training.trainer import Trainer

    overrides = list(args.overrides)
    if args.resume and "=" in args.resume and not Path(args.resume).exists():
        # `--resume key=value`: argparse took an override for the optional STATE path.
        overrides.insert(0, args.resume)
        args.resume = ""
    for flag, key in (("output", "output"), ("init", "model.init"), ("epochs", "epochs"), ("steps", "steps"),
                      ("batch_size", "batch_size"), ("threads", "threads")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.bf16:
        overrides.append("bf16=true")
    cfg = load_config(args.config, overrides)
    resume = None
    if args.resume is not None:
        resume = args.resume or str(Path(cfg["output"]) / "last.pt")
        if not Path(resume).is_file():
            raise CheckpointError(f"{resume}: no training checkpoint to resume from; check --resume "
                                  "or the output folder")
    info = init_distributed()
    try:
        command = "hydranet " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        trainer = Trainer(cfg, info, command=command, overwrite=args.overwrite)
        summary = trainer.fit(resume=resume, stop_after=args.stop_after)
        if info.is_main:
            line = f"done: step {summary['step']} in {summary['seconds']:.0f} s -> {summary['output']}"
            if summary["best"] is not None:
                line += f"; best validation score {summary['best']:.4f}"
            print(line)
    finally:
        shutdown_distributed()
    return 0
