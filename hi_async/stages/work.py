"""The job a decode worker does for one frame: decode, check, write, rename. Pure-ish.

Runs in a worker process (or thread), so its arguments and result are small picklable
tuples: compressed bytes go in, a status comes back, and the pixels only when the
caller asked for them. Shipping decoded pixels back through a process pool costs far
more than decoding them.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import codecs
from ..errors import DecodeError, UnsupportedContentType


@dataclass(frozen=True, slots=True)
class Job:
    data: bytes
    content_type: str | None
    rows: int
    columns: int
    samples: int
    dtype: str
    expected_crc32: int | None
    fmt: str  # jph | npy | raw | none
    path: str | None  # final path; written as path + ".tmp" first
    want_pixels: bool = False
    bits_allocated: int = 0  # 1: a binary segmentation, whose raw frames are packed bits


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # verified | mismatch (CRC or decode) | failed | unverifiable | disk_full
    actual_crc32: int | None = None
    error: str | None = None
    path: str | None = None
    pixels: Any = None


def _write(job: Job, pixels: np.ndarray) -> None:
    assert job.path is not None
    tmp = job.path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            if job.fmt == "jph":
                fh.write(job.data)
            elif job.fmt == "npy":
                # Not np.save: it writes through ndarray.tofile, whose short write on a
                # full disk raises an OSError without errno, which would look like a
                # per-frame failure instead of the run-stopping full disk it is.
                fmt = np.lib.format
                c_order = np.ascontiguousarray(pixels)
                fmt.write_array_header_1_0(fh, fmt.header_data_from_array_1_0(c_order))
                fh.write(c_order.tobytes())
            else:
                fh.write(np.ascontiguousarray(pixels).tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, job.path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def run_job(job: Job) -> Outcome:
    """Decode, verify and (when verified or unverifiable) write one frame."""
    try:
        pixels = codecs.decode(
            job.data, job.content_type, job.rows, job.columns, job.samples, job.dtype,
            job.bits_allocated,
        )
    except UnsupportedContentType as exc:
        return Outcome("failed", error=exc.message)
    except DecodeError as exc:
        # Possibly damaged in transit: the caller fetches it once more, like a mismatch.
        return Outcome("mismatch", error=exc.message)
    actual = codecs.crc32(pixels)
    if job.expected_crc32 is None:
        status = "unverifiable"
    elif actual == job.expected_crc32:
        status = "verified"
    else:
        return Outcome(
            "mismatch", actual,
            f"CRC32 mismatch: expected {job.expected_crc32:08x}, got {actual:08x}",
        )
    path = None
    if job.path is not None:
        try:
            os.makedirs(os.path.dirname(job.path), exist_ok=True)
            _write(job, pixels)
        except OSError as exc:
            kind = "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "failed"
            return Outcome(kind, actual, f"cannot write {job.path}: {exc.strerror or exc}")
        path = job.path
    return Outcome(status, actual, None, path, pixels if job.want_pixels else None)


def run_batch(jobs: list[Job]) -> list[Outcome]:
    """Several small frames per pool round trip, where the per-call cost dominates."""
    return [run_job(job) for job in jobs]
