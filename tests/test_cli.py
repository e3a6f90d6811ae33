"""The command-line program: help, info, and user errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys

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
