"""What the file system charges for one frame file, measured where the runs write theirs.

``--format raw`` differs from ``--format none`` by one file per frame, and what creating
a file costs can change several times over with what the machine did just before. On
ext4 without a journal (this project's benchmark machine), allocating an inode scans the
block group's free inodes from its start and passes over each one freed in the last
minutes (the kernel's ``recently_deleted``); after thousands of files were deleted near
the folder, each new file pays for that scan. And a file's data goes into page-cache
pages the kernel must find: on a virtual machine whose host takes back the guest's free
memory, a page it has not touched lately can cost tens of times more than one it reuses.
The bench therefore measures, at the start of each round and in the folder its runs
write to, what :func:`write_frame_file` costs for a frame of the MR series' size, and
what the same bytes cost written into one file (new pages, no new inode), so that a slow
file system, or slow memory, can be told from a slow client in the figures.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from hi_async.output.frames import write_all, write_frame_file

#: The mount table writes a space, tab, newline or backslash in a path as a backslash
#: and three octal digits.
_OCTAL = re.compile(r"\\([0-7]{3})")

#: Files per probe, and the size of each: a 256 x 256 16-bit frame, as the MR series.
PROBE_FILES = 200
PROBE_BYTES = 256 * 256 * 2


def probe(folder: Path, *, files: int = PROBE_FILES, nbytes: int = PROBE_BYTES) -> dict[str, Any]:
    """Write ``files`` frame files of ``nbytes`` into ``folder`` (which exists and is
    empty) as hi_async writes a ``.raw`` frame (a ``.tmp`` file, written, closed and
    renamed); the wall and CPU microseconds per file.

    The files are kept: deleting them would slow the next files created nearby, the very
    effect this measures (:meth:`hi_async.bench.clients.Target.retire`).
    """
    pixels = np.zeros(nbytes // 2, dtype="<u2")
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    for n in range(files):
        write_frame_file(os.path.join(folder, f"{n:05d}.raw"), "raw", b"", pixels,
                         pixels_crc=0)
    wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
    pages = _pages_only(os.path.join(folder, "pages.bin"), files, pixels)
    return {"files": files, "bytesPerFile": nbytes,
            "microsecondsPerFile": round(wall * 1e6 / files, 1),
            "cpuMicrosecondsPerFile": round(cpu * 1e6 / files, 1),
            "pagesMicrosecondsPerFile": round(pages * 1e6 / files, 1)}


def _pages_only(path: str, files: int, pixels: np.ndarray) -> float:
    """Seconds to append ``files`` frames' bytes to one new file at ``path`` (kept):
    the same count of new page-cache pages as the frame files, without their inodes,
    folder entries and renames."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        for _ in range(files):
            write_all(fd, pixels)
        return time.perf_counter() - start
    finally:
        os.close(fd)


def file_system(folder: Path) -> str | None:
    """The type of the file system ``folder`` is on (``ext4``, ``xfs``, ``tmpfs`` ...), from
    the mount table; None where there is none to read."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    where = os.path.realpath(folder)
    best, kind = "", None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = mount_point(fields[1])
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def mount_point(field: str) -> str:
    """A mount point as the mount table writes it, unescaped (``\\040`` is a space)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)
