"""The command-line program: help, info, and user errors without tracebacks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from hydranet.cli.main import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hydranet", *args], capture_output=True, text=True)


def test_help_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("weights", "info"):
        assert command in proc.stdout


def test_info_on_released_format(parity_ckpt, capsys):
    assert main(["info", str(parity_ckpt)]) == 0
    out = capsys.readouterr().out
    assert "parameters:  2,991,687" in out and "classes:     6 (kitti6)" in out


def test_user_error_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"\x00\x01garbage")
    proc = run_cli("info", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"hydranet: error: {bad}: not a PyTorch checkpoint (unrecognised file header); pass a released .ckpt or a hydranet .safetensors file"


def test_every_config_named_in_help_and_readme_exists():
    root = Path(__file__).resolve().parents[1]
    texts = [p.read_text() for p in sorted((root / "src" / "hydranet" / "cli").glob("*.py"))]
    texts += [(root / "README.md").read_text()] + [p.read_text() for p in sorted((root / "docs").glob("*.md"))]
    texts += [p.read_text() for p in sorted((root / "configs").rglob("*.yaml"))]
    # Lower-case names only: configs/NAME.yaml in the README is a placeholder.
    named = {m for t in texts for m in re.findall(r"configs/[a-z0-9_/]+\.yaml", t)}
    assert named, "no config named anywhere: the pattern is wrong"
    missing = sorted(n for n in named if not (root / n).is_file())
    assert not missing, f"help or README names configs that do not exist: {missing}"


def test_every_command_in_the_readme_names_real_subcommands_and_flags():
    from hydranet.cli.main import build_parser

    root = Path(__file__).resolve().parents[1]
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    readme = (root / "README.md").read_text()
    # Commands are code: fenced blocks and inline `...` spans, not prose.
    code = re.findall(r"```[a-z]*\n(.*?)```", readme, flags=re.S) + re.findall(r"`([^`\n]+)`", readme)
    commands = [m for c in code for m in re.findall(r"hydranet ([a-z][a-z-]*)([^`\n|]*)", c)]
    assert len(commands) >= 8, "the pattern finds no commands in the README"
    checked = 0
    for name, rest in commands:
        if name not in sub.choices:
            assert name in ("COMMAND",), f"README names `hydranet {name}`, which does not exist"
            continue
        options = {s for a in sub.choices[name]._actions for s in a.option_strings}
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
            assert flag in options, f"README: `hydranet {name} ... {flag}`: no such option"
            checked += 1
    assert checked >= 8
