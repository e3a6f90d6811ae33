"""``hydranet info``: what a weights file contains."""

from __future__ import annotations

import argparse

from ..checkpoints import load_model


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info", help="show the configuration of weights", description=__doc__,
        epilog="example:\n  hydranet info default\n  hydranet info ExpKITTI_joint.ckpt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", help="weights file (.ckpt or .safetensors) or registered name")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = load_model(args.weights)
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    print(f"weights:     {args.weights}")
    print(f"name:        {cfg.name or '-'}")
    print(f"encoder:     {cfg.encoder}")
    print(f"tasks:       {', '.join(cfg.tasks)}")
    print(f"classes:     {cfg.num_classes} ({cfg.label_set or 'custom'})")
    print(f"parameters:  {params:,}")
    print(f"depth range: {cfg.depth_range[0]:g}-{cfg.depth_range[1]:g} m")
    if cfg.class_names:
        print(f"class names: {', '.join(cfg.class_names)}")
    if cfg.training_data:
        print(f"trained on:  {cfg.training_data}")
    return 0
