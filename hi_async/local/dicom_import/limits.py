"""Limits on what an import job may take in, and on what one file may cost to convert.

The job limits are the service's (reference page, "Import"). The service documents no
limit on a frame's or an instance's decoded size, yet the emulator must have some: a
1 KB JPEG may claim 65500x65500 pixels, a 1 MB deflated file may inflate to gigabytes,
and both were decoded in full before anything looked at their size. The stack's own
limits below are checked against sizes read from headers, before anything is decoded
or inflated (:mod:`.size_checks`), and each worker's memory is capped as a backstop for
what no header tells (:mod:`.worker_memory`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: Files per import job (the service's).
MAX_FILES = 5000
#: The service's input limit per import job (10 GB, not adjustable).
IMPORT_MAX_BYTES = 10 * 1024**3

#: Decoded bytes of one frame (rows x columns x samples x bytes per sample): 1 GiB, e.g.
#: 23170x23170 16-bit grey or 18918x18918 RGB. The largest frames of medical imaging
#: (mammography at about 40 MB, big secondary captures at a few hundred MB) stay well
#: under it, and transcoding a frame takes about four times its size in memory, so one
#: at the limit fits a worker on an ordinary machine.
MAX_FRAME_BYTES = 1024**3
#: Decoded bytes of one instance's pixel data, all frames: 4 GiB, the most uncompressed
#: pixel data DICOM can hold at all (PixelData's length is a 32-bit field). Also the most
#: a deflated data set may inflate to (plus :data:`ATTRIBUTES_ALLOWANCE`).
MAX_INSTANCE_BYTES = 4 * 1024**3
#: What an instance's attributes other than its pixel data may add when inflated: the
#: service's limit on an image set's metadata (50 MB), which they all end up in.
ATTRIBUTES_ALLOWANCE = 50 * 1024**2
#: A worker never gets less memory than this by default: starting up takes about 200 MB
#: of address space, converting an ordinary CT or MR file a few tens of MB more.
MIN_WORKER_MEMORY = 1024**3


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """What converting one file may cost; travels with each file to its worker."""

    max_frame_bytes: int = MAX_FRAME_BYTES
    max_instance_bytes: int = MAX_INSTANCE_BYTES
    #: Bytes of address space a worker may add to what it holds once started; None
    #: means no cap.
    worker_memory: int | None = None


def default_worker_memory(workers: int) -> int:
    """An equal share of the machine's memory per worker, one share left for the server.

    Together the workers then cannot take more memory than the machine has, however
    the files they convert behave; each gets at least :data:`MIN_WORKER_MEMORY`.
    """
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): a fixed share
        physical = 8 * 1024**3
    return max(MIN_WORKER_MEMORY, physical // (max(1, workers) + 1))


def describe_bytes(count: int) -> str:
    """``1.5 GiB (1610612736 bytes)``: readable, and exact for whoever compares numbers."""
    size, unit = float(count), "bytes"
    for name in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, name
    return f"{count} bytes" if unit == "bytes" else f"{size:.1f} {unit} ({count} bytes)"
