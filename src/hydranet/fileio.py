"""Writing files so that a crash or Ctrl-C never leaves a half-written one in place."""

from __future__ import annotations

import glob
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp", fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    On an exception the temporary file is removed and ``path`` keeps its old content.
    The file gets ordinary permissions (mkstemp alone would make it 0600). ``fsync`` flushes
    the file to disk before the rename and the folder after it, so that after a power cut
    ``path`` is the old file or the complete new one (for checkpoints; pictures skip the cost).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            _fsync(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        if fsync:
            _fsync(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise  # some file systems cannot fsync a folder; a file must reach the disk
    finally:
        os.close(fd)


def remove_stale_temporaries(path: str | Path, suffix: str = ".tmp") -> list[Path]:
    """Remove the temporary files :func:`atomic_path` left beside ``path`` when a process was killed.

    Ctrl-C and SIGTERM remove their own; SIGKILL, a power cut or a full disk leave
    ``.NAME.XXXXXXXX.tmp`` files, which would otherwise pile up at every interrupted save.
    Returns the files removed. Call it before writing ``path`` from the one process that writes it.
    """
    path = Path(path)
    removed = []
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*{suffix}"):
            try:
                stale.unlink()
                removed.append(stale)
            except FileNotFoundError:
                pass
    return removed


def zip_problem(path: str | Path) -> str | None:
    """Why a zip file (PyTorch's checkpoint format) is damaged, or None when every member is intact.

    ``torch.load`` does not check the members' CRCs, so a flipped byte in a tensor loads as a
    wrong weight; this reads every member once and compares it with its CRC.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError) as exc:
        text = str(exc).strip().splitlines()
        return text[0] if text else type(exc).__name__
    return f"member {bad} fails its CRC check" if bad is not None else None
