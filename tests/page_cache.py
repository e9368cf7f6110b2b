"""Which pages of a file the page cache holds (``mincore(2)`` on a private mapping), and
whether a file system drops a clean file's pages when told to (tmpfs does not: they are
the files)."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

from hi_async.durability import release_cached

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def cached_pages(path: Path) -> tuple[int, int]:
    """(pages of ``path`` in the page cache, pages in all)."""
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    with open(path, "rb") as fh:
        mapping = mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        anchor = ctypes.c_char.from_buffer(mapping)
        vector = (ctypes.c_ubyte * pages)()
        try:
            if _libc.mincore(ctypes.addressof(anchor), size, vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            del anchor
    finally:
        mapping.close()
    return sum(v & 1 for v in vector), pages


def drops_clean_pages(folder: Path) -> bool:
    """Whether the file system of ``folder`` drops a clean file's cached pages on
    ``POSIX_FADV_DONTNEED``."""
    probe = folder / ".page-cache-probe"
    probe.write_bytes(os.urandom(16 * mmap.PAGESIZE))
    try:
        with open(probe, "rb+") as fh:
            os.fsync(fh.fileno())
        release_cached([str(probe)])
        return cached_pages(probe)[0] == 0
    finally:
        probe.unlink()
