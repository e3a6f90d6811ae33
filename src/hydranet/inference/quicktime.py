"""The camera a phone video states: QuickTime metadata keys in a MOV / MP4 file's atoms.

iPhones (and apps that copy Apple's keys) write the lens as
``com.apple.quicktime.camera.focal_length.35mm_equivalent``, usually in the video track's
own ``meta`` atom, where FFmpeg (and so PyAV) does not look; that is why the atoms are read
here. Only the atoms on the way to a ``meta`` are read, never the media data.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from .camera import PLAUSIBLE_FOCAL_35MM

FOCAL_35MM_KEY = "com.apple.quicktime.camera.focal_length.35mm_equivalent"
# Atoms that hold other atoms on the way from the file to a ``meta``.
_CONTAINERS = {b"moov", b"trak", b"udta"}
# A movie header larger than this is not read (a real one is a few MB for hours of video).
MAX_MOOV_BYTES = 64 << 20


def _atoms(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload start, payload end)`` of the atoms in ``buf[start:end]``; stops at the
    first malformed one."""
    end = len(buf) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size, header = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _read_moov(path: Path) -> bytes | None:
    """The file's ``moov`` atom (header included), None when it has none or it is implausible."""
    with path.open("rb") as f:
        f.seek(0, 2)
        file_size = f.tell()
        pos = 0
        while pos + 8 <= file_size:
            f.seek(pos)
            head = f.read(16)
            if len(head) < 8:
                return None
            size, kind = struct.unpack_from(">I4s", head)
            if size == 1 and len(head) == 16:
                size = struct.unpack_from(">Q", head, 8)[0]
            elif size == 0:
                size = file_size - pos
            if size < 8 or pos + size > file_size:
                return None
            if kind == b"moov":
                if size > MAX_MOOV_BYTES:
                    return None
                f.seek(pos)
                return f.read(size)
            pos += size
    return None


def _meta_items(buf: bytes, start: int, end: int) -> dict[str, tuple[int, bytes]]:
    """``key -> (data type, value bytes)`` of one ``meta`` atom's ``keys`` and ``ilst``."""
    # QuickTime's meta holds atoms directly; the ISO (udta) one starts with version and flags.
    if start + 8 <= end and buf[start + 4:start + 8] not in (b"hdlr", b"keys", b"ilst"):
        start += 4
    keys: list[str] = []
    items: dict[str, tuple[int, bytes]] = {}
    children = list(_atoms(buf, start, end))
    for kind, s, e in children:
        if kind == b"keys" and s + 8 <= e:
            count = struct.unpack_from(">I", buf, s + 4)[0]
            for _, ks, ke in islice(_atoms(buf, s + 8, e), count):
                # Each key atom's type is its namespace ("mdta"); the payload is the name.
                keys.append(buf[ks:ke].decode("utf-8", "replace"))
    for kind, s, e in children:
        if kind != b"ilst":
            continue
        for index_bytes, is_, ie in _atoms(buf, s, e):
            index = struct.unpack(">I", index_bytes)[0]
            if not 1 <= index <= len(keys):
                continue
            for dkind, ds, de in _atoms(buf, is_, ie):
                if dkind == b"data" and ds + 8 <= de:
                    data_type = struct.unpack_from(">I", buf, ds)[0] & 0xFFFFFF
                    items.setdefault(keys[index - 1], (data_type, buf[ds + 8:de]))
    return items


def _number(data_type: int, value: bytes) -> float | None:
    """A metadata value as a number: text ("26", "50.00mm"), integers or floats."""
    if data_type == 1:  # UTF-8
        match = re.match(r"\s*([0-9]+(?:\.[0-9]+)?)", value.decode("utf-8", "replace"))
        return float(match.group(1)) if match else None
    if data_type in (21, 22) and len(value) in (1, 2, 4, 8):
        return float(int.from_bytes(value, "big", signed=data_type == 21))
    if data_type == 23 and len(value) == 4:
        return struct.unpack(">f", value)[0]
    if data_type == 24 and len(value) == 8:
        return struct.unpack(">d", value)[0]
    return None


def _metas(buf: bytes, start: int, end: int, depth: int = 0) -> Iterator[tuple[int, int]]:
    """Every ``meta`` atom under ``moov``, ``trak`` and ``udta`` (moov/trak/udta/meta is the
    deepest a real file nests them; a crafted file nesting deeper is not followed)."""
    for kind, s, e in _atoms(buf, start, end):
        if kind == b"meta":
            yield s, e
        elif kind in _CONTAINERS and depth < 3:
            yield from _metas(buf, s, e, depth + 1)


def quicktime_focal_35mm(path: str | Path) -> float | None:
    """The 35 mm-equivalent focal length (mm) a MOV / MP4 file's QuickTime keys state; None
    when absent, implausible, or the file is not an ISO media file."""
    try:
        moov = _read_moov(Path(path))
    except OSError:
        return None
    if moov is None:
        return None
    lo, hi = PLAUSIBLE_FOCAL_35MM
    top = next(_atoms(moov), None)
    if top is None:
        return None
    for s, e in _metas(moov, top[1], top[2]):
        item = _meta_items(moov, s, e).get(FOCAL_35MM_KEY)
        if item is None:
            continue
        focal = _number(*item)
        if focal is not None and lo <= focal <= hi:
            return focal
    return None
