"""Downloading released checkpoints into the cache, verified by git blob id, written atomically."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import DownloadError
from .released import RELEASED, base_url, cache_dir

_CHUNK = 1 << 16


def git_blob_id(path: str | Path) -> str:
    """What ``git hash-object FILE`` prints: SHA-1 of ``b"blob <size>\\0" + content``."""
    path = Path(path)
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _remove_stale_parts(folder: Path, filename: str) -> None:
    # A killed download leaves its .part behind; nothing else writes these names.
    for stale in folder.glob(f".{filename}.*.part"):
        try:
            if time.time() - stale.stat().st_mtime > 60:
                stale.unlink()
        except OSError:
            pass


def download_released(name: str, url: str | None = None, force: bool = False,
                      progress: bool = True, timeout: float = 60.0, deadline: float = 900.0) -> Path:
    """Fetch the released checkpoint ``name`` into the cache and return its path.

    The file is verified against its git blob id before it replaces anything, so
    an interrupted or corrupted download never leaves a bad file in the cache. ``timeout``
    bounds each wait for data, ``deadline`` the whole download (seconds); a body larger
    than the entry's ``max_bytes`` is cut off and refused.
    """
    if name not in RELEASED:
        raise DownloadError(f"unknown released weights {name!r}; choose from {', '.join(RELEASED)}")
    entry = RELEASED[name]
    target = cache_dir() / entry.filename
    if target.is_file() and not force and git_blob_id(target) == entry.git_blob_id:
        return target
    url = url or f"{base_url()}/{entry.filename}"
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(target.parent, entry.filename)
    start = time.monotonic()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{entry.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                raise DownloadError(f"{url}: download failed ({reason}); check the network "
                                    "or set HYDRANET_WEIGHTS_URL to a mirror") from None
            with response:
                total = response.headers.get("Content-Length")
                expected = int(total) if total and total.isdigit() else None
                if expected is not None and expected > entry.max_bytes:
                    raise DownloadError(f"{url}: the server announces {expected} bytes, more than the "
                                        f"{entry.max_bytes} a released checkpoint can be; check the URL")
                received = 0
                with tqdm(total=expected, unit="B", unit_scale=True, desc=entry.filename,
                          disable=not progress, leave=False) as bar:
                    while True:
                        if time.monotonic() - start > deadline:
                            raise DownloadError(f"{url}: no complete file after {deadline:g} s "
                                                f"({received} bytes); the server is too slow, try again "
                                                "later or set HYDRANET_WEIGHTS_URL to a mirror")
                        try:
                            chunk = response.read1(_CHUNK)  # what has arrived: a slow drip cannot stall it
                        except (OSError, ValueError, http.client.HTTPException) as exc:
                            raise DownloadError(f"{url}: connection broke after {received} bytes "
                                                f"({exc}); run the download again") from None
                        if not chunk:
                            break
                        if received + len(chunk) > entry.max_bytes:
                            raise DownloadError(f"{url}: more than {entry.max_bytes} bytes, larger than a "
                                                "released checkpoint can be; check the URL")
                        out.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        if expected is not None and received != expected:
            raise DownloadError(f"{url}: truncated download ({received} of {expected} bytes); "
                                "run the download again")
        blob = git_blob_id(tmp)
        if blob != entry.git_blob_id:
            raise DownloadError(f"{url}: checksum mismatch (git blob {blob}, expected "
                                f"{entry.git_blob_id}); the file is corrupt or not the released one, "
                                "nothing was written to the cache")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
